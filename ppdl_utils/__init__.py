"""ppdl_utils: the package behind the ppdl notebooks, in layers (a module imports only its own
layer or the layers below; ``tests/test_layers.py`` enforces it).

Foundation (top-level modules)
    ``errors``          PPDLError and its subclasses: every deliberate error names its culprit
    ``config``          data root ($PPDL_DATA), offline ImageNet weights, run names
    ``records``         RunRecord: one trained model, written by notebook 03, read by 04/06/08
    ``outputs``         results/<run>/ and figures/<run>/, each run's MANIFEST.json, the flat-layout migration
    ``notebook_params`` checks papermill parameters against a notebook's parameters cell
    ``secret_scan``     finds private-key material (any form) in outputs

``crypto/`` -- the schemes and their keys
    ``regimes``         randomized / fixed_r / r_one / table, and what each leaks
    ``security``        security level of a modulus size (NIST SP 800-57)
    ``paillier``        keys (n, g, λ, μ), c = g^m r^n mod n², homomorphic operations
    ``fast_encrypt``    CRT + fixed-base short-exponent encryption for the key holder
    ``cipher_array``    arrays of Paillier ciphertexts, (de)serialisation, CRT decryption
    ``serialization``, ``bundle``   key fingerprints in serialized ciphertexts; HMAC-authenticated bundles
    ``keyfiles``        crash-safe, validated key files
    ``lwe``             Regev LWE (secret key, noise-tracked); ``rsa_textbook``: deterministic RSA
    ``ckks``            TenSEAL CKKS contexts checked against the HomomorphicEncryption.org table

``images/`` -- images under encryption
    ``encryption``      per-pixel encryption in every regime; ``render``: ciphertexts back to bytes
    ``encrypted_cache`` encrypted datasets cached on disk, checked on load; ``metrics``: entropy, NPCR, SSIM...
    ``literature_ciphers``  image "ciphers" of the literature: chaotic logistic map, AES-ECB/CTR, permutation

``data/`` -- datasets
    ``dataset``, ``loaders``, ``duplicates``, ``splits``, ``checks``   class folders, Kaggle and MedMNIST
    layouts, duplicate and label-conflict resolution, leakage-free splits; ``synthetic``: the embedded
    default; ``tabular``: the osteoporosis CSV; ``sources``: one entry point for the notebooks

``attacks/`` -- what a server recovers from deterministic "encryptions"
    ``base`` (AttackResult), ``algebraic`` (r_one, fixed_r, RSA, LWE with reused randomness),
    ``substitution`` (known pair, ciphertext only), ``keystream`` (a reused keystream from one known pair),
    ``suite`` (every attack over a test set)

``learning/`` -- models and training
    ``models``          every Keras model; ``input_table``: the learnable 256-entry input layer and its starts
    ``training``        the one training loop and best-epoch rule, run records
    ``features``        backbone features; ``private_inference``: Paillier / LWE linear heads on ciphertexts
    ``encrypted_mlp``, ``encrypted_cnn``, ``encrypted_training``, ``encrypted_common``   CKKS rungs 3-5
    ``distribute``      tf.distribute strategies

``analysis/`` -- measurements across schemes: ``scheme_comparison``, ``cipher_stats``, ``timing``;
    ``audit``: any image encryption's learnability, determinism, IND-CPA game, attacks and statistics
``scale/`` -- Dask: encryption of datasets and batch private inference beyond one process
``reporting/`` -- ``reports`` (the papers' tables, figures of runs), ``key_draws``, ``ladder``, ``figures``,
    ``tables`` (every results table of the README and docs, rendered from results/), ``site`` (make docs)
``studies/`` -- whole experiments for the notebooks and bench/: ``regimes`` (encrypt each regime, build, train,
    record: notebook 03 and bench/check_synthetic_default.py)
``teaching/`` -- ipywidgets: ``widgets`` (Paillier playground, image explorer), ``ckks_widget``
``cli/`` -- the ``ppdl`` command (``ppdl audit``)
"""

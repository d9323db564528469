"""Cryptography: regimes, security levels, Paillier, fast encryption, ciphertext arrays, key files, LWE, RSA."""

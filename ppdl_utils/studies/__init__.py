"""Studies: whole experiments run through the lower layers, called by the notebooks and bench/ alike.

``regimes``           the regime study: encrypt each regime once, build the same network, train, test, record
``private_pipeline``  a head trained and evaluated on CKKS ciphertexts only, per split seed, beside plain
"""

"""Stand-ins for what the tests cannot use: small data files and local copies of online sources.

``fixtures`` writes tiny data sets in the real file layouts (Brown for nltk, Yelp, CrowS-Pairs);
``servers`` runs stand-ins of the Hugging Face hub, plain-URL downloads and a proxy on 127.0.0.1.
"""

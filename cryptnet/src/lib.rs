//! CryptnetUrlCache, OCSP CertID decoding and crt.sh client for certhist

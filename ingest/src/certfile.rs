//! Reading certificates from files: PEM bundles, DER, base64 lines. (Being written.)

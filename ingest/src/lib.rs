//! Certificate normalisation (DER to record) and file imports for certhist

//! Certificate Transparency clients (RFC 6962 and static-ct-api) for certhist

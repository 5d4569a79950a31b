//! Views of a CryptnetUrlCache analysis (`certhist cryptnet`, the web UI's upload page).

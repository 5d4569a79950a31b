//! TLS scanner and scan-data importers (ZGrab2, Sonar, nmap, masscan) for certhist

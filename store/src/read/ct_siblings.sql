-- Other certificates with the same TBS apart from the CT extensions ($1 = tbs_noct_sha256): a
-- precertificate and its final certificate (RFC 6962 §3.2). $2 = the certificate itself.
SELECT c.sha1, c.sha256, c.serial, c.subject_cn, c.subject_o, c.issuer_cn, c.issuer_o,
       c.not_before, c.not_after, c.is_ca, c.is_precert, c.parse_error
FROM certificates c
WHERE c.tbs_noct_sha256 = $1 AND c.sha1 <> $2
ORDER BY c.sha1
LIMIT 100

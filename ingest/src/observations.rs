//! Observation files: CSV / TSV / NDJSON sightings.

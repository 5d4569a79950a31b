//! Test-database helper: one managed cluster per test run (or `TEST_DATABASE_URL`), a template
//! database migrated once, a fresh database per test.

"""The benchmarks of `reviewer bench` (BENCHMARKS.md); `project` is their scratch project."""

# The PostgreSQL server the database benchmarks create their throwaway databases on.
POSTGRES_SERVER_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"

-- The PostgreSQL container's first start: the MLflow server's database, next to Kaizen's (POSTGRES_DB=kaizen).
-- MLflow's schema lives in a database of its own (it and Optuna both use an alembic_version table: mlflow#2923).
CREATE DATABASE mlflow OWNER kaizen;

"""Entry points over the application layer: the CLI, the jobs/ wrapper and Airflow."""

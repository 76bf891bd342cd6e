"""Entry points over the application layer: the CLI and Airflow."""

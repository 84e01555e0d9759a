"""Development tools, off the runtime path: local Kafka and Postgres, simulated traffic, and
the generated workloads of tests and the benchmark."""

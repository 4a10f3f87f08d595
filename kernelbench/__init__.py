"""Problems: the KernelBench format, size profiles, hold-out variants and task-hygiene checks."""

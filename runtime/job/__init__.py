"""What a requester submits: the job spec (job.toml), packaging of model and data for workers,
and hyperparameter searches over jobs."""

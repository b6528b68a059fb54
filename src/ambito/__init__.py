"""The whole platform in one place: the embedded runner, the worker of every queue, the CLI."""

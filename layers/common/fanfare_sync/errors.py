"""Failures of the outside world that the logic layer reacts to; adapters raise them, never boto3's own."""


class DependencyUnavailableError(Exception):
    """An AWS dependency could not be used; the caller should answer so the sender retries."""


class QueueUnavailableError(DependencyUnavailableError):
    pass


class SecretsUnavailableError(DependencyUnavailableError):
    pass

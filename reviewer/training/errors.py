"""The error training, registering and retraining report: input that cannot be trained on."""


class TrainingError(ValueError):
    """Input that cannot be trained on; ``str(exc)`` is the message shown to people."""

"""Bringing your own Keras model: a Sequential or functional model with dropout becomes a new
version, every Dropout turned into `MCDropout` (weights kept). A subclassed model or one without
dropout is refused with the reason. With ``fit_data`` (a folder of in-distribution images) its
OOD score is fitted there (reviewer.training.ood_fit); without, the worker scores `ood` with the
fallback score. TensorFlow is reached only through `reviewer.ml.mc`.
"""

from __future__ import annotations

from reviewer.core import settings
from reviewer.core.schema import ModelVersion
from reviewer.training import ood_fit, registry
from reviewer.training.errors import TrainingError
from reviewer.training.train import record


def _checked_spec(model, input_spec: dict | None) -> dict:
    """``input_spec``, or the one the model's fixed input shape gives; TrainingError when the
    two disagree or the shape is not fixed."""
    shape = tuple(model.inputs[0].shape[1:])
    if input_spec is None:
        if len(shape) != 3 or None in shape:
            raise TrainingError(f"the model's input shape {shape} is not fixed: give --input-size")
        input_spec = registry.input_spec(shape[0], shape[1], shape[2])
    wanted = (input_spec["height"], input_spec["width"], input_spec["channels"])
    if len(shape) != 3 or any(s not in (None, w) for s, w in zip(shape, wanted, strict=True)):
        raise TrainingError(f"the model expects inputs {shape}, the input spec gives {wanted}")
    return input_spec


def register_keras_model(
    session_factory,
    config,
    *,
    model_path,
    name,
    classes=None,
    input_spec=None,
    mc_samples=registry.CARD_SAMPLES,
    trained_on=None,
    fit_data=None,
    activate=False,
) -> ModelVersion:
    """Import a user's Sequential/functional Keras model (with dropout) as a new version.

    ``input_spec`` None takes height, width and channels from the model's input shape.
    ``fit_data``: a folder of in-distribution images the OOD score is fitted on (None: none).
    ``trained_on`` is the user's statement (sha256 list; None: not stated).
    Raises TrainingError with the reason when the model cannot be used.
    """
    from reviewer.ml import mc

    registry.check_name(name)
    with session_factory() as session:
        project = settings.get_classes(session)
    classes = list(classes or project)
    if not classes:
        raise TrainingError("no classes given and no project class list set")
    try:
        model = mc.to_mc_model(mc.load_model(model_path))
    except ValueError as exc:
        raise TrainingError(f"{model_path}: {exc}") from exc
    spec = _checked_spec(model, input_spec)
    outputs = model.outputs[0].shape[-1]
    if outputs != len(classes):
        raise TrainingError(f"the model has {outputs} outputs but there are {len(classes)} classes")
    fit = None
    if fit_data is not None:
        try:
            fit = ood_fit.fit_from_folder(model, fit_data, spec, T=mc_samples)
        except ValueError as exc:  # a graph the features cannot be read from
            raise TrainingError(
                f"--fit-data: {exc}; register without --fit-data to use the fallback score"
            ) from exc
    card = registry.new_card(
        name=name,
        classes=classes,
        input_spec=spec,
        mc_samples=mc_samples,
        imported_from=str(model_path),
        trained_on=trained_on,
    )
    card, path = registry.write_version(
        config.model_dir, card, lambda p: model.save(p), ood_fit=fit
    )
    return record(session_factory, card, path, activate=activate)

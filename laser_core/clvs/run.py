"""`run_clvs`: answer with cross-layer vision smoothing and keep its per-token, per-layer trace."""

from __future__ import annotations

from laser_core.clvs.hooks import clvs_hooks, make_smoother
from laser_core.clvs.result import ClvsResult
from laser_core.config import LaserConfig
from laser_core.decode import decode
from laser_core.loading import VLM
from laser_core.passes import Passes
from laser_core.stages import ImageInput, prepare, timed


def run_clvs(
    vlm: VLM,
    image: ImageInput,
    question: str,
    config: LaserConfig | None = None,
    *,
    head_steps: int = 1,
    baseline: bool = True,
    passes: Passes | None = None,
) -> ClvsResult:
    """Answer with CLVS and keep its per-token, per-layer trace.

    Args:
        vlm: From `load_model`.
        image: A PIL image (any mode) or a path.
        question: The question; whitespace is normalised.
        config: Settings (`clvs_*` fields, decoding); None = the METHOD.md defaults.
        head_steps: Keep [head, patch] rows for this many first decoding steps (>= 0); the head
            means are kept for every step.
        baseline: Also keep the unsmoothed model's attention for the first token
            (`baseline_attention`, for the decay chart): a[q], the plain prefill's last row,
            captured once more unless `passes` already holds it (then it is kept anyway).
        passes: The shared passes of this input (`run_methods`); the image, question and config
            are then those of `passes`, and its vision features and captures are reused.

    Raises:
        ValueError: unusable image or question, or settings that do not fit the model.
    """
    if passes is None:
        passes = Passes(vlm, *prepare(vlm, image, question, config))
    image, question, config = passes.image, passes.question, passes.config
    timings: dict[str, float] = {}
    adapter = vlm.adapter
    with timed(timings, "decode"):
        inputs, (geometry,) = passes.encode([passes.prompts.query], [image])
        smoother = make_smoother(vlm, adapter.visual_mask(inputs)[0], config)
        with clvs_hooks(vlm, smoother):
            decoded = decode(vlm, inputs, config)
    a_query = passes.captured("query")
    if baseline and a_query is None:
        with timed(timings, "baseline"):
            a_query = passes.capture("query")
    baseline_attention = None if a_query is None else a_query.mean(1).numpy()  # [layer, patch]
    trace = smoother.trace(
        adapter.n_heads, int(adapter.visual_mask(inputs)[0].sum()), max(0, head_steps)
    )
    return ClvsResult(
        question=question,
        model_id=vlm.model_id,
        answer=decoded.answer,
        token_ids=decoded.token_ids,
        steps=decoded.steps,
        check_from=smoother.settings.check_from,
        baseline_attention=baseline_attention,
        grid=geometry.grid,
        cell_boxes=geometry.cell_boxes,
        image=image,
        timings=timings,
        config=config.to_dict(),
        **trace,
    )

"""Training the embedded toy LLaVA: the pieces behind ``scripts/train_embedded.py``.

- ``model``: processor (word tokenizer, 64-px CLIP image path) and the architecture.
- ``data``: seeded scenes, views, per-patch labels, prompts and batches of both phases.
- ``loop``: what both training loops share (learning-rate schedule, atomic checkpoints).
- ``vision``: phase 1, the tower learns per-patch colour / shape / mark labels.
- ``tune``: phase 2 (``llava``), projector initialisation and the tuning loop.
- ``evaluate``: held-out accuracy and the example scenes the app ships.
- ``run``: the whole run, resumable: phases in order, then export.
"""

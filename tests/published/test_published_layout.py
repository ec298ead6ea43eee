"""Image tokens and geometry under the published tokenizers and processors.

The token ids around the images are written out from the published vocabularies; the grids from
the published processor settings (LLaVA: CLIP at 336 px, 14-px patches; Qwen2.5-VL: 14-px
patches merged 2 x 2, `smart_resize` to multiples of 28 within our pixel budget). A wide image
(800 x 500) shows what a square test image cannot: LLaVA's padding, Qwen's aspect-kept resize.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from PIL import Image
from published_models import Checkpoint, scene

from laser_core import LaserConfig
from laser_core.adapters import ImageGeometry
from laser_core.stages import encode_checked

pytestmark = pytest.mark.published

QUERY = "What colour is the ball? Answer the question using a single word or phrase."
FREE = "Answer the question using a single word or phrase."
CROP = (100, 50, 500, 350)  # a 400 x 300 crop of the scene


@dataclass(frozen=True)
class Layout:
    """Token ids of one user turn: before + (open, image x n, close) per image + text + after."""

    before: tuple[int, ...]
    open: tuple[int, ...]
    image: int
    close: tuple[int, ...]
    after: tuple[int, ...]
    pad: int

    def row(self, counts: list[int], text: list[int]) -> list[int]:
        images = [t for n in counts for t in (*self.open, *[self.image] * n, *self.close)]
        return [*self.before, *images, *text, *self.after]


LAYOUTS = {
    "llava": Layout(
        before=(1, 3148, 1001, 29901, 29871),  # <s> ▁US ER : ▁          "USER: "
        open=(),
        image=32000,  # <image>, expanded by the processor
        close=(29871, 13),  # ▁ <0x0A>                                   the "\n" after <image>
        after=(319, 1799, 9047, 13566, 29901),  # ▁A SS IST ANT :        " ASSISTANT:"
        pad=32001,  # <pad>
    ),
    "qwen2_5_vl": Layout(
        # <|im_start|>system \n You ␣are ␣a ␣helpful ␣assistant . <|im_end|> \n <|im_start|>user \n
        before=(151644, 8948, 198, 2610, 525, 264, 10950, 17847, 13, 151645, 198, 151644, 872, 198),
        open=(151652,),  # <|vision_start|>
        image=151655,  # <|image_pad|>
        close=(151653,),  # <|vision_end|>
        after=(151645, 198, 151644, 77091, 198),  # <|im_end|> \n <|im_start|> assistant \n
        pad=151643,  # <|endoftext|>
    ),
}
# (rows, cols) of visual tokens: LLaVA always 336 / 14 = 24; Qwen smart_resize(h, w) / 28:
# 800 x 500 -> 812 x 504 -> 29 x 18; 400 x 300 -> 392 x 308 -> 14 x 11.
GRIDS = {
    "llava": {"scene": (24, 24), "crop": (24, 24)},
    "qwen2_5_vl": {"scene": (18, 29), "crop": (11, 14)},
}


def _check_row(
    checkpoint: Checkpoint, ids: torch.Tensor, mask: torch.Tensor, counts: list[int], text: str
) -> None:
    """One left-padded row: pads (masked out), then exactly the published layout around `text`."""
    layout = LAYOUTS[checkpoint.family]
    n_pad = int((mask == 0).sum())
    assert mask[n_pad:].all(), "padding must all be on the left"
    assert ids[:n_pad].tolist() == [layout.pad] * n_pad
    row = ids[n_pad:].tolist()
    head = len(layout.row(counts, [])) - len(layout.after)  # before + the image runs
    middle = row[head : len(row) - len(layout.after)]
    assert row == layout.row(counts, middle)
    assert checkpoint.vlm.tokenizer.decode(middle) == text


def test_one_image_rows_hold_the_image_tokens_in_place(checkpoint: Checkpoint) -> None:
    vlm, image = checkpoint.vlm, scene()
    inputs, (geometry,) = encode_checked(vlm, [QUERY, FREE], [image, image], LaserConfig())
    assert geometry.grid == GRIDS[checkpoint.family]["scene"]
    count = geometry.grid[0] * geometry.grid[1]
    assert inputs["attention_mask"][1].sum() < inputs["attention_mask"][0].sum()  # row 1 padded
    rows = zip(inputs["input_ids"], inputs["attention_mask"], (QUERY, FREE), strict=True)
    for ids, mask, text in rows:
        _check_row(checkpoint, ids, mask, [count], text)


def test_a_two_image_turn_holds_both_images_then_the_text(checkpoint: Checkpoint) -> None:
    vlm, image = checkpoint.vlm, scene()
    crop = image.crop(CROP)
    inputs, geometries = encode_checked(vlm, [QUERY], [[image, crop]], LaserConfig())
    grids = GRIDS[checkpoint.family]
    assert [g.grid for g in geometries] == [grids["scene"], grids["crop"]]
    counts = [g.grid[0] * g.grid[1] for g in geometries]
    _check_row(checkpoint, inputs["input_ids"][0], inputs["attention_mask"][0], counts, QUERY)


def test_qwen_s_own_positions_read_the_tokens_row_major(qwen_checkpoint: Checkpoint) -> None:
    """The model's 3-D rotary positions place token k at (k // cols, k % cols) of its image."""
    vlm, image = qwen_checkpoint.vlm, scene()
    inputs, geometries = encode_checked(vlm, [QUERY], [[image, image.crop(CROP)]], LaserConfig())
    positions, _ = vlm.model.model.get_rope_index(
        inputs["input_ids"],
        inputs["mm_token_type_ids"],
        image_grid_thw=inputs["image_grid_thw"],
        attention_mask=inputs["attention_mask"],
    )  # [3 (time, height, width), batch, seq]
    visual = torch.nonzero(vlm.adapter.visual_mask(inputs)[0]).flatten()
    offset = 0
    for geometry in geometries:
        rows, cols = geometry.grid
        span = visual[offset : offset + rows * cols]
        assert span.tolist() == list(range(int(span[0]), int(span[0]) + rows * cols))  # contiguous
        time, height, width = (positions[axis, 0, span] for axis in range(3))
        k = torch.arange(rows * cols)
        assert torch.equal(time, time[:1].expand_as(time))
        assert torch.equal(height - height.min(), k // cols)
        assert torch.equal(width - width.min(), k % cols)
        offset += rows * cols
    assert offset == len(visual)


def test_llava_pads_a_wide_image_to_a_square(llava_checkpoint: Checkpoint) -> None:
    vlm, image = llava_checkpoint.vlm, scene()
    processor = vlm.adapter.image_processor
    assert processor.do_center_crop and processor.crop_size["height"] == 336  # as published
    inputs, (geometry,) = encode_checked(vlm, [QUERY], [image], LaserConfig())
    assert tuple(inputs["pixel_values"].shape) == (1, 3, 336, 336)
    assert geometry.grid == (24, 24)
    assert geometry.covered == (0, -150, 800, 650)  # the 800 x 800 square, 150 px above and below
    assert geometry.cell_size == pytest.approx((800 / 24, 800 / 24))
    boxes = geometry.cell_boxes
    empty = (boxes[..., 3] - boxes[..., 1]) == 0  # [rows, cols]
    assert sorted(set(np.nonzero(empty)[0].tolist())) == [0, 1, 2, 3, 20, 21, 22, 23]
    assert empty[[0, 1, 2, 3, 20, 21, 22, 23]].all()
    assert np.allclose(boxes[..., 2] - boxes[..., 0], 800 / 24)  # every column: full width
    lit = boxes[~empty]
    assert (lit[:, 0].min(), lit[:, 1].min(), lit[:, 2].max(), lit[:, 3].max()) == (0, 0, 800, 500)


@pytest.mark.parametrize(
    ("size", "budget", "grid"),
    [
        ((800, 500), 1280, (18, 29)),  # 812 x 504, within the default budget
        ((400, 300), 1280, (11, 14)),  # 392 x 308
        ((800, 500), 100, (7, 12)),  # over a 100-token budget: scaled down to 336 x 196
        ((3000, 1875), 1280, (28, 45)),  # our budget, not the published 16384-token cap
    ],
)
def test_qwen_resizes_to_the_published_grid_within_our_budget(
    qwen_checkpoint: Checkpoint, size: tuple[int, int], budget: int, grid: tuple[int, int]
) -> None:
    vlm = qwen_checkpoint.vlm
    processor = vlm.adapter.image_processor
    assert (processor.patch_size, processor.merge_size, processor.temporal_patch_size) == (14, 2, 2)
    assert (processor.size.shortest_edge, processor.size.longest_edge) == (3136, 12845056)
    image = Image.new("RGB", size, (90, 140, 30))
    config = LaserConfig(max_visual_tokens=budget)
    inputs, (geometry,) = encode_checked(vlm, [QUERY], [image], config)
    rows, cols = grid
    assert inputs["image_grid_thw"].tolist() == [[1, 2 * rows, 2 * cols]]
    assert tuple(inputs["pixel_values"].shape) == (4 * rows * cols, 3 * 2 * 14 * 14)
    assert geometry.grid == grid and rows * cols <= budget
    assert geometry.covered == (0.0, 0.0, float(size[0]), float(size[1]))  # no pad, no crop


def _paint(geometry: ImageGeometry) -> tuple[Image.Image, np.ndarray]:
    """The image with each grid cell filled by its own random colour; [rows, cols, 3] colours."""
    rows, cols = geometry.grid
    colours = np.random.default_rng(1).integers(0, 256, size=(rows, cols, 3))
    width, height = geometry.image_size
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    for r in range(rows):
        for c in range(cols):
            x0, y0, x1, y1 = (int(round(v)) for v in geometry.cell_boxes[r, c])
            pixels[y0:y1, x0:x1] = colours[r, c]
    return Image.fromarray(pixels), colours


def _token_colours(
    checkpoint: Checkpoint, pixels: torch.Tensor, grid: tuple[int, int]
) -> np.ndarray:
    """[rows, cols, 3] colour (0-255) at the centre of the input pixels of each visual token."""
    processor = checkpoint.vlm.adapter.image_processor
    mean = torch.tensor(processor.image_mean)
    std = torch.tensor(processor.image_std)
    rows, cols = grid
    if checkpoint.family == "llava":  # [1, 3, 336, 336]: token (r, c) is the patch at (r, c)
        centres = pixels[0, :, 7::14, 7::14].permute(1, 2, 0)  # [rows, cols, 3]
    else:  # [patches, 3 * 2 * 14 * 14], each token's 2 x 2 patches in a row; take the pixel at
        # the bottom right of its first patch, next to the token's centre
        centres = pixels.reshape(rows * cols, 4, 3, 2, 14, 14)[:, 0, :, 0, -1, -1]
    return ((centres * std + mean) * 255).reshape(rows, cols, 3).numpy()


def test_each_token_sees_the_pixels_of_its_cell(checkpoint: Checkpoint) -> None:
    """Cells painted on the wide image come back, token by token, through the real processor;
    LLaVA's cells over the padding show the mean colour."""
    vlm = checkpoint.vlm
    probe = scene()
    _, (geometry,) = encode_checked(vlm, [QUERY], [probe], LaserConfig())
    painted, colours = _paint(geometry)
    inputs, _ = encode_checked(vlm, [QUERY], [painted], LaserConfig())
    seen = _token_colours(checkpoint, inputs["pixel_values"], geometry.grid)
    boxes = geometry.cell_boxes
    widths, heights = boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1]
    whole = (widths > 0.99 * widths.max()) & (heights > 0.99 * heights.max())
    assert whole.mean() > 0.5
    error = np.abs(seen - colours)[whole].max()
    assert error < 12, f"a token shows a colour from another cell (max error {error:.0f}/255)"
    padding = (widths == 0) | (heights == 0)
    assert padding.any() == (checkpoint.family == "llava")
    if padding.any():
        assert np.abs(seen[padding] - np.array(vlm.adapter.mean_color)).max() < 3

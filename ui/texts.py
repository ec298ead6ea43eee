"""The words of the LASER Lens page: one or two sentences per panel, the credits, and its CSS."""

# --- UI copy: one or two sentences per panel ----------------------------------------------------
TITLE = "LASER Lens"
INTRO = """\
# LASER Lens
Ask a vision-language model a question about an image and watch **where it looks**. LASER finds the
decoder layer whose attention responds most to *your question* (layer **l\\***), crops the image
there, and decodes from the crop while checking each word against a copy with the attended spot
masked out (**VAT** decoding). Upload an image, ask, press **Run LASER**, then scrub the layers."""
MODEL_NOTE = (
    "The embedded toy model runs here on the CPU, offline, in seconds; it knows a toy "
    "world of coloured shapes with fine marks (try the examples). The hub models need a "
    "GPU and a download of several GB."
)
ANSWER_HELP = (
    "**Answer.** Big: LASER's answer, decoded from the crop. Below it: the plain model on "
    "the full image, the layer l\\* whose attention placed the crop, and whether VAT "
    "decoding changed the token choice."
)
EXPLORER_HELP = """\
**Attention explorer.** Where the answer's first token looks in the image, at one decoder layer
(brighter = more attention; the colour bar gives the values). **Raw**: attention with your
question. **Relative**: raw divided by the attention for a generic "describe the image" prompt
(ViCrop's map). **Contrastive**: what your question adds over the same prompt without it; LASER's
map. Move the slider: the maps are redrawn from memory, the model does not run again."""
FORCE_HELP = (
    "**What if another layer?** Crop, mask and decode again from the layer on the slider "
    "instead of l\\*: a wrong layer often crops the wrong spot and changes the answer. "
    "This reuses the attention captured by the last run (same image, question, model and "
    "settings), so only the crop, the mask and the decoding run again."
)
VAQ_HELP = (
    "**Visual Activation by Query (VAQ), per layer.** How strongly each layer's attention "
    "to the image changes because of the question (the size of its contrastive map). LASER "
    "picks the tallest bar, l\\* (orange); the hatched blue bar is the fixed layer ViCrop "
    "uses."
)
CROP_HELP = (
    "**The crop (I+).** Left: the window, half the image side, that holds the most "
    "contrastive attention at l\\*. Right: the crop the model reads, enlarged, so fine "
    "details survive its low input resolution."
)
COUNTERFACTUAL_HELP = (
    "**The counterfactual (I−).** The cells with the most attention are masked "
    "(hatched, left) and the same crop is taken (right, as the model reads "
    "it). Tokens that need the masked detail lose score on I−."
)
VAT_HELP = (
    "**VAT (Visual Activation of Tokens), token by token.** For each generated token, the "
    "top candidates: z+ (logit on the crop), z− (logit on the masked crop), VAT = z+ − z− "
    "(how much the token depends on the attended detail), s = z+ + α·VAT (the score LASER "
    "ranks by) and its probability p(s). ✓ marks the token produced."
)
EXPORT_HELP = (
    "**Export.** A 1920 × 1080 slide with every panel (at the layer on the slider) and "
    "the full result as JSON."
)
COMPARE_HELP = (
    "**Compare methods** on the image and question above, with the same settings. "
    "Vanilla and VCD read the full image (VCD contrasts it with a noised copy); ViCrop "
    "crops at a fixed layer (blue box), LASER at l\\* (orange box). Each picture is what "
    "the method read."
)
CLVS_HELP = (
    "**CLVS (cross-layer vision smoothing)**, a second method: while the model writes "
    "each token, the attention it pays to the image is blended, layer after layer, "
    "with a memory of where earlier layers looked, so an early focus is not lost. "
    "Left: the share of attention going to the image per layer, without and with "
    "smoothing. Right: the model's uncertainty per layer; smoothing stops once it "
    "drops below the threshold δ."
)
CLVS_MAPS_HELP = (
    "**Where the first answer token looks**, at one layer, without smoothing "
    "(left) and with CLVS (right), on one colour scale."
)
SETTINGS_HELP = (
    "Every setting of the method (`LaserConfig`), with its meaning and range. Leave a "
    "number blank for its default (or `None`). Changes apply to the next Run."
)
CITATION = """\
**LASER** (Layer-adaptive Attention-guided Selective visual and decoding Enhancement for
Reasoning): Z. Zhu, Z. Hu, Q. Zhu, Y. Hong, Y. Liu, J. Su, Y. He and L. Gui, *Beyond Static
Cropping: Layer-Adaptive Visual Localization and Decoding Enhancement*. **ViCrop**: J. Zhang et
al., *MLLMs Know Where to Look: Training-free Perception of Small Visual Details with Multimodal
LLMs* (ICLR 2025). **VCD**: S. Leng et al., *Mitigating Object Hallucinations in Large
Vision-Language Models through Visual Contrastive Decoding* (CVPR 2024). **CLVS**: *Cross-Layer
Vision Smoothing: Enhancing Visual Understanding via Sustained Focus on Key Objects in Large
Vision-Language Models*.

LASER Lens is built with PyTorch, Hugging Face Transformers, Gradio, Pillow and Matplotlib. The
embedded toy model is a small LLaVA trained for this project on a synthetic world of shapes; it
runs offline on a CPU. Layers and heads are numbered from 0 everywhere."""

CSS = """
.laser-answer {padding: 0.6rem 1rem; border-radius: 12px; background: var(--block-background-fill);
  border: 1px solid var(--border-color-primary);}
.laser-answer-label {font-size: 0.95rem; opacity: 0.75; text-transform: uppercase;
  letter-spacing: 0.06em;}
.laser-answer-main {font-size: 3rem; font-weight: 700; line-height: 1.15; color: #D55E00;
  overflow-wrap: anywhere;}
.laser-answer-facts {display: flex; flex-wrap: wrap; gap: 0.4rem 1.6rem; font-size: 1.15rem;
  margin-top: 0.3rem;}
.vat-table table, .vat-table td {font-family: var(--font-mono); white-space: pre;}
"""

# %% [markdown]
# # Lesson 04 · The encoder block
#
# **Goal:** build a transformer encoder block from LayerNorm, a feed-forward network and residual connections, and show it computes exactly what `torch.nn.TransformerEncoderLayer` computes.
#
# **Time:** about 80 minutes.
#
# Multi-head attention (lesson 03) lets tokens exchange information. An encoder block
# wraps it with three more ingredients, and then blocks can be stacked as deep as you
# like:
#
# 1. the block at a glance (5 min);
# 2. LayerNorm from scratch, exercise 4.1 (15 min);
# 3. the position-wise feed-forward network, exercise 4.2 (10 min);
# 4. residual connections and your own encoder block, exercise 4.3 (25 min);
# 5. why residuals make deep stacks possible (10 min);
# 6. post-norm or pre-norm, and stacking blocks (5 min);
# 7. what a decoder block adds (10 min).
#
# Each exercise has a one-line check cell under it: one line back when your code is
# right, one sentence naming the problem when it is not.
#
# **What carries over.** Your block is built from your own parts: the
# `MultiHeadAttention` of lesson 03 (the first code cell says whether it is yours or the
# course's) and the `layer_norm` and `FeedForward` you write here. When the block's check
# passes it is kept, and lessons 06 to 08 stack it into the models they train and probe:
# the Yelp classifier, the small BERT and the decoder that writes. Any part you skip is
# replaced by the course's, and `parts.show()` tells you which.

# %%
import matplotlib.pyplot as plt
import torch
from torch import nn

from course_utils import encoder as reference  # the course's own solutions, used by demos
from course_utils import get_device, parts, set_seed
from course_utils.attention import padding_mask
from course_utils.encoder import load_encoder_layer, torch_block_settings
from course_utils.exercises import check
from course_utils.plots import feature_bars, line_chart

device = get_device()
set_seed(0)
parts.keep_on_google_drive()  # in Colab: asks to keep your parts in your Drive; elsewhere nothing

# Your multi-head attention from lesson 03 if it passed its check, otherwise the course's.
attention_part = parts.get("multi_head_attention")
MultiHeadAttention = attention_part.impl
print(f"MultiHeadAttention: {attention_part.origin} {attention_part.reason}".strip())

# %% [markdown]
# ## 1. The block at a glance (5 min)
#
# The original transformer's encoder block has two **sublayers**, multi-head
# self-attention and a feed-forward network. Each is wrapped the same way: its output
# goes through dropout, is **added to its input** (the residual connection), and the sum
# is normalised with **LayerNorm**:
#
# ```
# x ─┬─► multi-head attention ─► dropout ─► (+) ─► LayerNorm ─┬─► feed-forward ─► dropout ─► (+) ─► LayerNorm ─► out
#    └──────────────────────────────────────┘                 └─────────────────────────────────┘
# ```
#
# Input and output are both `(batch, seq, d_model)`: that is what lets the residual add
# them, and what lets the next block take this block's output. BERT-base stacks 12 such
# blocks; the original translation model stacked 6.

# %% [markdown]
# ## 2. LayerNorm from scratch (15 min)
#
# LayerNorm takes **one token's** feature vector $x \in \mathbb{R}^{d}$ and rescales it to
# mean 0 and variance 1, then applies a learned scale $\gamma$ (`weight`) and shift
# $\beta$ (`bias`), one per feature:
#
# $$\mu = \frac1d \sum_i x_i, \qquad \sigma^2 = \frac1d \sum_i (x_i - \mu)^2, \qquad
#   y_i = \frac{x_i - \mu}{\sqrt{\sigma^2 + \varepsilon}}\,\gamma_i + \beta_i .$$
#
# Three details decide whether you match `nn.LayerNorm`:
#
# - the statistics run over the **feature axis only** (`dim=-1`): one mean and one
#   variance per token, never mixing tokens, positions or sentences;
# - the variance divides by $d$, not $d - 1$ (the *biased* variance:
#   `unbiased=False`; PyTorch's `Tensor.var` defaults to the other one);
# - $\varepsilon$ (1e-5 by default) keeps a token whose features are all equal ($\sigma = 0$)
#   from being divided by zero. It goes **inside** the square root, as in `nn.LayerNorm`;
#   added outside, $\sigma + \varepsilon$, it gives visibly different results when
#   $\sigma$ is small, and the checker tests such tokens.
#
# A viewer of the encoder video asked why the layer normalises over one dimension only
# and not over the batch as well. Normalising over the batch is *batch* normalisation, a
# different layer: its result for one sentence depends on which other sentences share its
# batch, and it needs running averages at inference time. LayerNorm's result for a token
# depends on that token alone, so training and inference compute the same thing, a batch
# of one works, and padding tokens cannot disturb real ones. In `nn.LayerNorm(d_model)`,
# the argument `d_model` names the trailing axes to normalise: just the features.
#
# ### Exercise 4.1: `layer_norm` (10 min)
#
# Write `layer_norm(x, weight, bias, eps=1e-5)`: `x` is `(..., d_model)` (any leading
# axes, e.g. `(batch, seq, d_model)`), `weight` and `bias` are `(d_model,)`; return a
# tensor of the same shape as `x`. Write it from the mean and the variance, not with
# `F.layer_norm` or `nn.LayerNorm`: those are what the cells below compare yours with.


# %% tags=["exercise"]
def layer_norm(x, weight, bias, eps=1e-5):
    """Normalise each token's features (last axis) to mean 0, variance 1; then scale and shift."""
    ### BEGIN SOLUTION
    mean = x.mean(dim=-1, keepdim=True)  # (..., 1)
    variance = x.var(dim=-1, keepdim=True, unbiased=False)  # (..., 1)
    return (x - mean) / torch.sqrt(variance + eps) * weight + bias
    ### END SOLUTION


# %% tags=["check"]
check("4.1", layer_norm)

# %% [markdown]
# What your LayerNorm does to one token: its 16 features, before and after (with
# $\gamma = 1$, $\beta = 0$). The pattern of the features is kept; their offset and
# spread are removed.

# %%
token = torch.randn(16) * 3 + 2  # one token's features: mean about 2, spread about 3
my_layer_norm = parts.yours_or_reference("4.1", layer_norm)
normalised = my_layer_norm(token, torch.ones(16), torch.zeros(16))
print(f"before: mean {token.mean():5.2f}, std {token.std(unbiased=False):4.2f}")
print(f"after:  mean {normalised.mean():5.2f}, std {normalised.std(unbiased=False):4.2f}")
feature_bars({"before": token, "after LayerNorm": normalised}, title="One token's features")
plt.show()

# %% [markdown]
# And yours equals PyTorch's layer once both have the same (here random, not default)
# `weight` and `bias`:

# %% tags=["nbval-check-output"]
torch_norm = nn.LayerNorm(16)
with torch.no_grad():
    torch_norm.weight.normal_()
    torch_norm.bias.normal_()
x = torch.randn(4, 7, 16)  # (batch, seq, d_model)
ours = my_layer_norm(x, torch_norm.weight, torch_norm.bias)
print("equal to nn.LayerNorm within 1e-5:", torch.allclose(ours, torch_norm(x), atol=1e-5))

# %% [markdown]
# A block keeps its norms' $\gamma$ and $\beta$ as parameters. This small module (given,
# not an exercise) wraps your function the way `nn.LayerNorm` wraps PyTorch's, with the
# same parameter names, `weight` and `bias`:


# %%
class LayerNorm(nn.Module):
    """Your layer_norm with a learned scale (weight, γ) and shift (bias, β) per feature."""

    def __init__(self, d_model, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model))
        self.bias = nn.Parameter(torch.zeros(d_model))

    def forward(self, x):
        return layer_norm(x, self.weight, self.bias, self.eps)


# %% [markdown]
# ## 3. The position-wise feed-forward network (10 min)
#
# Attention mixes information **between** tokens. The feed-forward sublayer then works on
# each token **on its own**: two linear maps with a non-linearity between them,
#
# $$\operatorname{FFN}(x) = W_2\, \operatorname{act}(W_1 x + b_1) + b_2,$$
#
# from `d_model` up to a hidden width `d_ff` and back down. The original paper used
# `d_ff = 4 × d_model` (2048 for 512) and ReLU; BERT and GPT use GELU, a smooth ReLU. The
# video this course grew from uses 2 × d_model; any width works, wider is more expressive
# and slower. Without the activation the two maps would collapse into a single linear
# map.
#
# *Position-wise* means the same weights are applied at every position separately, like
# a 1 × 1 convolution. (Viewers sometimes confuse it with *positional encoding*, lesson
# 05: the two are unrelated.) Since `nn.Linear` acts on the last axis, a plain
# `(batch, seq, d_model)` tensor goes through unchanged in layout.
#
# ### Exercise 4.2: `FeedForward` (10 min)
#
# Write the class `FeedForward(d_model, d_ff, dropout=0.0, activation="relu")`:
# `linear1 = nn.Linear(d_model, d_ff)`, `linear2 = nn.Linear(d_ff, d_model)` (these names:
# the checker copies weights by name), the activation `nn.ReLU()` or `nn.GELU()` by the
# `activation` argument, and `self.dropout = nn.Dropout(dropout)` on the hidden layer.
# `forward(x)`: `(batch, seq, d_model)` in, the same shape out,
# `linear2(dropout(activation(linear1(x))))`. The checker also runs it in training mode, to
# see that the dropout sits there and uses the `dropout` it was given.


# %% tags=["exercise"]
class FeedForward(nn.Module):
    """linear2(dropout(activation(linear1(x)))), applied to every token separately."""

    def __init__(self, d_model, d_ff, dropout=0.0, activation="relu"):
        super().__init__()
        ### BEGIN SOLUTION
        self.linear1 = nn.Linear(d_model, d_ff)
        self.activation = nn.GELU() if activation == "gelu" else nn.ReLU()
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(d_ff, d_model)
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        return self.linear2(self.dropout(self.activation(self.linear1(x))))
        ### END SOLUTION


# %% tags=["check"]
check("4.2", FeedForward)

# %% [markdown]
# Position-wise, shown numerically: a token sent through the network on its own gives the
# same result as the same token inside a sentence.

# %% tags=["nbval-check-output"]
ff = parts.yours_or_reference("4.2", FeedForward)(16, 64, activation="gelu")
sentence = torch.randn(1, 5, 16)
in_context = ff(sentence)[0, 3]
alone = ff(sentence[:, 3:4])[0, 0]  # token 3 as a sentence of one
print("token 3 alone = token 3 in its sentence:", torch.allclose(in_context, alone, atol=1e-6))

# %% [markdown]
# ## 4. Residual connections and your encoder block (25 min)
#
# A residual connection adds a sublayer's input to its output: $x + f(x)$. The sublayer
# no longer has to reproduce everything worth keeping, only to compute a *change* to it;
# and the $x$ term gives gradients a straight path back through the stack (section 5
# measures what happens without it).
#
# Where does the norm go? Two layouts are in use:
#
# - **post-norm** (the original paper): `x = norm(x + dropout(sublayer(x)))`;
# - **pre-norm** (GPT-2 and most models since): `x = x + dropout(sublayer(norm(x)))`.
#
# **Dropout placement.** During training, dropout zeroes random entries of the sublayer's
# **output**, before it is added to the residual; the residual itself is never dropped.
# A viewer suggested applying dropout before normalisation, so the norm is not undoing
# it: in the post-norm layout that is exactly the order, dropout, add, norm. Dropping the
# *sum* instead would punch holes in the residual path too. PyTorch's layer also drops
# attention weights and the feed-forward's hidden layer, and so does your block: your
# attention drops weights (lesson 03) and your feed-forward its hidden layer (4.2). The
# 4.3 checker runs your block in training mode to see each dropout strike where it should.
#
# **Does `x_residual = x` need a `.clone()`?** Another viewer proposed writing
# `x_residual = x.clone()` so that later changes to `x` cannot reach the saved copy. For
# code like `x = self.attention(x)` it is not needed: the assignment makes `x` name a
# **new** tensor and leaves the old one, still named `x_residual`, untouched. A copy
# matters only if something changes the tensor **in place** (`x += ...`, `x.relu_()`,
# `nn.ReLU(inplace=True)`): then both names see the change. The cell below shows both.

# %% tags=["nbval-check-output"]
x = torch.tensor([1.0, -2.0, 3.0])
x_residual = x  # a second name for the same tensor, no copy
x = x * 10  # a new tensor; the name x moves to it
print("after x = x * 10:   x_residual =", x_residual.tolist())

x = torch.tensor([1.0, -2.0, 3.0])
x_residual = x
x.mul_(10)  # in place: changes the one tensor both names refer to
print("after x.mul_(10):   x_residual =", x_residual.tolist())

# %% [markdown]
# ### Exercise 4.3: your `EncoderBlock` (20 min)
#
# Write the class `EncoderBlock(d_model, num_heads, d_ff, dropout=0.0, activation="relu",
# norm_first=False, eps=1e-5)`, an `nn.Module` assembled from your parts.
#
# `__init__` creates, with exactly these names (the checker, and the loader below, copy
# weights by name):
#
# - `self_attn = MultiHeadAttention(d_model, num_heads, dropout)`: your class from lesson
#   03 (see the first code cell);
# - `feed_forward = FeedForward(d_model, d_ff, dropout, activation)`: yours from 4.2;
# - `norm1` and `norm2`, each `LayerNorm(d_model, eps)`: the wrapper around your 4.1;
# - `dropout1` and `dropout2`, each `nn.Dropout(dropout)`;
# - and keeps `norm_first`.
#
# `forward(x, mask=None)`: `x` is `(batch, seq, d_model)`; `mask` is `None` or a bool mask,
# True = may attend, broadcastable to `(batch, num_heads, seq, seq)`, handed on to
# `self_attn`. Return the block's output, the same shape as `x`. First the attention
# sublayer (`self_attn(...)` returns `(output, weights)`: keep the output) with `norm1` and
# `dropout1`, then the feed-forward sublayer, which reads the attention sublayer's result,
# with `norm2` and `dropout2`; post-norm or pre-norm according to `norm_first`.
#
# The checker builds your block with several head counts and sizes, both layouts, a
# larger `eps`, padding and causal masks, and in training mode, where it compares where
# your dropouts strike. If you skipped or did not pass 4.1 or 4.2, the next cell puts the
# course's `layer_norm` or `FeedForward` in place of yours, and says so; run it again once
# yours passes.

# %%
# Your layer_norm (used by LayerNorm) and FeedForward if their checks passed, else the course's.
layer_norm = parts.yours_or_reference("4.1", layer_norm)
FeedForward = parts.yours_or_reference("4.2", FeedForward)


# %% tags=["exercise"]
class EncoderBlock(nn.Module):
    """Self-attention, then feed-forward, each with dropout, a residual and a LayerNorm."""

    def __init__(
        self, d_model, num_heads, d_ff, dropout=0.0, activation="relu", norm_first=False, eps=1e-5
    ):
        super().__init__()
        ### BEGIN SOLUTION
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(d_model, num_heads, dropout)
        self.feed_forward = FeedForward(d_model, d_ff, dropout, activation)
        self.norm1 = LayerNorm(d_model, eps)
        self.norm2 = LayerNorm(d_model, eps)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        ### END SOLUTION

    def forward(self, x, mask=None):
        ### BEGIN SOLUTION
        if self.norm_first:
            x = x + self.dropout1(self.self_attn(self.norm1(x), mask=mask)[0])
            x = x + self.dropout2(self.feed_forward(self.norm2(x)))
        else:
            x = self.norm1(x + self.dropout1(self.self_attn(x, mask=mask)[0]))
            x = self.norm2(x + self.dropout2(self.feed_forward(x)))
        return x
        ### END SOLUTION


# %% tags=["check"]
check("4.3", EncoderBlock)

# %% [markdown]
# ### Your block computes what `nn.TransformerEncoderLayer` computes
#
# PyTorch's layer has the same parts under nearly the same names; only its attention
# keeps the three input projections stacked in one `in_proj_weight`, which the course's
# `load_encoder_layer(block, layer)` splits exactly as your `load_from_torch` of lesson
# 03 did. `torch_block_settings(layer)` reads the layer's sizes, so your block is built
# to match. Below, PyTorch's layers get random norm weights and biases (their defaults,
# 1 and 0, would hide a swapped or forgotten one), and your block must agree with each,
# both layouts and both activations, with a padding mask too. PyTorch's
# `src_key_padding_mask` means the opposite of ours (True = padding, may **not** be
# attended), so we invert it in a named variable.

# %% tags=["nbval-check-output"]
Block = parts.yours_or_reference("4.3", EncoderBlock)  # says so if the check has not passed
x = torch.randn(3, 6, 32)  # (batch, seq, d_model)
keep = padding_mask(torch.tensor([6, 4, 2]), 6)  # (batch, seq): True at real tokens
src_key_padding_mask = ~keep  # PyTorch's convention: True at padding
for norm_first in (False, True):
    for activation in ("relu", "gelu"):
        layer = nn.TransformerEncoderLayer(
            32, 4, 64, activation=activation, norm_first=norm_first, batch_first=True
        ).eval()
        with torch.no_grad():
            for norm in (layer.norm1, layer.norm2):
                norm.weight.normal_(1.0, 0.3)
                norm.bias.normal_(0.0, 0.3)
        block = load_encoder_layer(Block(**torch_block_settings(layer)), layer).eval()
        same = torch.allclose(block(x), layer(x), atol=1e-5) and torch.allclose(
            block(x, mask=keep[:, None, None, :]),
            layer(x, src_key_padding_mask=src_key_padding_mask),
            atol=1e-5,
        )
        layout = "pre-norm " if norm_first else "post-norm"
        print(f"{layout} {activation}: yours equals PyTorch's layer, with and without mask: {same}")

# %% [markdown]
# **Why must every sublayer return `(batch, seq, d_model)`?**

# %% [markdown] tags=["solution"]
# **Answer.** The residual adds the
# sublayer's output to its input element by element, so the shapes must match; and the
# next block expects exactly what this block received. That is why the feed-forward
# network goes up to `d_ff` and back down, and why multi-head attention ends with
# `out_proj` to `d_model`.

# %% [markdown]
# ## 5. Why residuals make deep stacks possible (10 min)
#
# Stack 24 freshly initialised blocks of yours and push a batch of random "sentences"
# through, in three versions: pre-norm with residuals (plus the final LayerNorm a pre-norm
# stack needs, section 6), post-norm with residuals, and the same sublayers chained
# **without** residuals. Per block we measure
#
# - how much the tokens of a sentence still differ: the size of what is left of each
#   token after subtracting the sentence's average token, relative to the tokens' size
#   (1 for unrelated tokens, 0 when every token is the same vector, a matrix of rank one);
# - how large the gradient of a loss is with respect to three of the block's weights:
#   `q_proj` (what to attend to), `v_proj` (what to pass on) and the feed-forward's
#   `linear2`.
#
# (About 5 seconds.)

# %%
set_seed(0)
depth, d_model = 24, 64
x = torch.randn(8, 12, d_model)  # (batch, seq, d_model)
target = torch.randn(8, 12, d_model)  # something for a loss to pull towards
spread, gradients = {}, {}
for name in ("pre-norm + residuals", "post-norm + residuals", "no residuals"):
    set_seed(1)  # the same initial weights for every version
    pre = name.startswith("pre")
    blocks = [Block(d_model, 4, 4 * d_model, norm_first=pre) for _ in range(depth)]
    final_norm = nn.LayerNorm(d_model) if pre else nn.Identity()
    h, left = x, []
    for block in blocks:
        if name == "no residuals":  # the same sublayers, each output replacing its input
            h = block.self_attn(block.norm1(h))[0]
            h = block.feed_forward(block.norm2(h))
        else:
            h = block(h)
        differences = h - h.mean(dim=1, keepdim=True)  # each token minus the sentence's mean
        left.append((differences.norm(dim=(1, 2)) / h.norm(dim=(1, 2))).mean().item())
    nn.functional.mse_loss(final_norm(h), target).backward()
    spread[name] = left
    gradients[name] = {
        "q_proj": [b.self_attn.q_proj.weight.grad.norm().item() for b in blocks],
        "v_proj": [b.self_attn.v_proj.weight.grad.norm().item() for b in blocks],
        "feed-forward linear2": [b.feed_forward.linear2.weight.grad.norm().item() for b in blocks],
    }

fig, axes = plt.subplots(2, 2, figsize=(12, 8))
layers = range(1, depth + 1)
line_chart(
    layers,
    spread,
    xlabel="block",
    ylabel="token differences left (relative)",
    title="What dies without residuals: the tokens' differences",
    logy=True,
    ax=axes[0, 0],
)
for ax, weight in zip(axes.flat[1:], ("q_proj", "v_proj", "feed-forward linear2"), strict=True):
    line_chart(
        layers,
        {name: by_weight[weight] for name, by_weight in gradients.items()},
        xlabel="block",
        ylabel=f"gradient norm of {weight}.weight",
        title=f"Gradient reaching each block's {weight}",
        logy=True,
        ax=ax,
    )
plt.tight_layout()
plt.show()

# %%
for name in spread:
    q, v = gradients[name]["q_proj"], gradients[name]["v_proj"]
    print(
        f"{name:22s} differences left after block 4: {spread[name][3]:.1e}   "
        f"gradient at block 12: q_proj {q[11]:.1e}, v_proj {v[11]:.1e}"
    )
q = gradients["no residuals"]["q_proj"]
print(
    "no residuals, q_proj's gradient in blocks 1 to 3:",
    ", ".join(f"{g:.1e}" for g in q[:3]),
    f"and at most {max(q[3:]):.1e} from block 4 on",
)

# %% [markdown]
# Without residuals, the tokens' differences are gone within four blocks: what is left,
# about $10^{-7}$, is float32 rounding. Every token of a sentence has become the
# same vector (the token matrix has collapsed to rank one). The reason is the state of
# attention at initialisation: its scores are small, so each query spreads its weight
# almost evenly and receives almost the **average** of the values, the same vector for
# every token, and the feed-forward network, which treats every token alike, cannot
# separate identical tokens again.
#
# The gradients show what that costs. `v_proj` and `linear2` still receive healthy
# gradients, because they still shape the one vector all tokens share, and the loss
# depends on it. `q_proj`'s gradient falls block by block with the tokens' differences
# (the last line above): it is healthy in the first block, whose tokens still differ, and
# less than $10^{-7}$ from the fourth block on, where they have become one vector. `q_proj`
# only decides how to weigh the tokens against each other, and when all tokens are equal
# every weighting gives the same result. What dies is not the gradient in general but the
# **token signal**: the stack can no longer tell one token from another, so it cannot
# learn anything about which token relates to which. With residuals, each block *adds*
# its average to the token instead of replacing it, the tokens stay distinct (their
# differences shrink slowly with depth, and training teaches attention to do something
# sharper than averaging), and every weight in every block receives a gradient of a
# useful size.

# %% [markdown]
# ## 6. Post-norm or pre-norm, and stacking (5 min)
#
# A pre-norm block never normalises its own output, so the residual stream grows from
# block to block, and a pre-norm stack ends with one extra LayerNorm before whatever
# reads it (the experiment above has it). With that norm, the two layouts give gradients
# of a similar size at initialisation. What differs is their **shape** across the stack:
# compare the gradient at the last block with the one at the first.

# %% tags=["nbval-check-output"]
for name in ("pre-norm + residuals", "post-norm + residuals"):
    ratios = ", ".join(
        f"{weight} {by_block[-1] / by_block[0]:.2f}×"
        for weight, by_block in gradients[name].items()
    )
    print(f"{name:22s} last block's gradient / first block's: {ratios}")

# %% [markdown]
# Read the ratios weight by weight. In the post-norm stack, `v_proj`'s gradient **grows
# towards the output**, more than doubling from the first block to the last, and
# `linear2`'s grows slightly; in the pre-norm stack, `v_proj`'s stays about level and
# `linear2`'s shrinks. In the post-norm stack, the gradient on its way down to a block
# passes through every LayerNorm above it, one per sublayer, and these tend to shrink it;
# in the pre-norm stack each block's output reaches the loss through additions only, the
# same straight path for every block. `q_proj`'s gradient shrinks towards the output in
# both layouts: it only weighs the tokens against each other, and their differences
# shrink block by block (the top-left plot).
#
# So at initialisation post-norm tilts the updates towards the blocks near the output.
# This is one reason the original post-norm transformer needed learning-rate **warm-up**,
# a few thousand steps of a small, rising learning rate: at full rate from the first
# step, large updates to the top blocks can destabilise training before the lower blocks
# have learnt anything. Pre-norm stacks train stably without it, or with a short one,
# which is why GPT-2 and most models since use them. (Post-norm's token differences also
# shrink faster with depth: the top-left plot.)
#
# `reference.Encoder` stacks blocks and adds that final norm when `norm_first=True`; its
# `block_factory` argument lets it stack **your** blocks:

# %%
stack = reference.Encoder(
    6, d_model=128, num_heads=4, d_ff=512, norm_first=True, block_factory=Block
)
tokens = torch.randn(2, 10, 128)
print("output:", tuple(stack(tokens).shape), "(the shape goes in, the same shape comes out)")
print(f"parameters: {sum(p.numel() for p in stack.parameters()):,}")
print(f"blocks: {type(stack.layers[0]).__name__}, then {type(stack.final_norm).__name__}")

# %% [markdown]
# ## 7. What a decoder block adds (10 min)
#
# The encoder reads a whole input at once. A **decoder** generates an output one token at a
# time, and its block differs in two ways:
#
# - its self-attention is **causal** (lesson 02's mask): position $i$ sees positions
#   $0..i$ only, so during training it cannot peek at the word it must predict next;
# - between self-attention and the feed-forward network sits **cross-attention**
#   (lesson 03): queries from the decoder, keys and values from the encoder's output
#   (the *memory*), so each generated word can look at the whole source sentence.
#
# ```
# y ─► causal self-attention ─► add & norm ─► cross-attention to memory ─► add & norm ─► feed-forward ─► add & norm
# ```
#
# Encoder blocks, decoder blocks, or both joined by cross-attention: these make the three
# families of transformer models, and lesson 07 sets them side by side in one table, with
# what each is trained to predict.
#
# `reference.DecoderBlock` has exactly this structure. Two checks: changing the *future*
# of a target sequence leaves the outputs at earlier positions untouched (causality), and
# the block computes the same as PyTorch's `nn.TransformerDecoderLayer`.

# %% tags=["nbval-check-output"]
decoder_layer = nn.TransformerDecoderLayer(32, 4, 64, batch_first=True).eval()
decoder = reference.DecoderBlock.from_torch(decoder_layer).eval()
memory = torch.randn(2, 9, 32)  # the encoder's output for a 9-token source
target = torch.randn(2, 5, 32)  # the 5 target tokens generated so far

changed = target.clone()
changed[:, 3:] = torch.randn(2, 2, 32)  # new tokens at positions 3 and 4
out, out_changed = decoder(target, memory), decoder(changed, memory)
print("positions 0-2 unchanged:", torch.allclose(out[:, :3], out_changed[:, :3], atol=1e-6))
print("positions 3-4 changed:  ", not torch.allclose(out[:, 3:], out_changed[:, 3:]))

torch_out = decoder_layer(
    target, memory, tgt_mask=nn.Transformer.generate_square_subsequent_mask(5)
)
print("equal to nn.TransformerDecoderLayer:", torch.allclose(out, torch_out, atol=1e-5))

# %% [markdown]
# (Here we pass PyTorch's float causal mask, $-\infty$ at the blocked entries; `tgt_mask`
# also takes a boolean mask, where True means blocked, the opposite of ours. The course
# block builds its own boolean causal mask inside.)

# %% [markdown]
# ## Summary
#
# - An encoder block is two sublayers, self-attention and a position-wise feed-forward
#   network, each wrapped in dropout, a residual connection and LayerNorm.
# - LayerNorm normalises each token over its own features: biased variance, $\varepsilon$
#   inside the square root, then a learned scale and shift.
# - The feed-forward network applies the same two linear maps (with ReLU or GELU between)
#   to every token on its own.
# - Residuals keep tokens distinct through deep stacks; without them, near-uniform
#   attention at initialisation makes every token the same vector (rank collapse), and
#   nothing can be learnt about which token relates to which.
# - Post-norm normalises after the residual add (the original); at initialisation it tilts
#   the gradients towards the blocks near the output, one reason it needs warm-up.
#   Pre-norm normalises before the sublayer (most models since) and needs a final norm at
#   the top of the stack.
# - Given the same weights, your block equals `nn.TransformerEncoderLayer`.
# - Decoder blocks add causal self-attention and cross-attention to the encoder's output.
#
# Next, lesson 05 adds the one thing still missing: the order of the tokens. Your block is
# kept for lessons 06 to 08; this table shows which of your parts they will use:

# %%
parts.show()

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
# 4. residual connections and the block's forward pass, exercise 4.3 (20 min);
# 5. why residuals make deep stacks possible (10 min);
# 6. post-norm or pre-norm, and stacking blocks (5 min);
# 7. what a decoder block adds (15 min).
#
# Each exercise has a one-line check cell under it: one line back when your code is
# right, one sentence naming the problem when it is not.

# %%
import matplotlib.pyplot as plt
import torch
from torch import nn

from course_utils import encoder as reference  # the course's own solutions, used by demos
from course_utils import get_device, set_seed
from course_utils.attention import padding_mask
from course_utils.exercises import check
from course_utils.plots import feature_bars, line_chart

device = get_device()
set_seed(0)

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
# - $\varepsilon$ (1e-5 by default) goes **inside** the square root, so a token whose
#   features are all equal gives 0, not a division by zero.
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
# tensor of the same shape as `x`.


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
# What LayerNorm does to one token: its 16 features, before and after (with $\gamma = 1$,
# $\beta = 0$). The pattern of the features is kept; their offset and spread are removed.

# %%
token = torch.randn(16) * 3 + 2  # one token's features: mean about 2, spread about 3
normalised = reference.layer_norm(token, torch.ones(16), torch.zeros(16))
print(f"before: mean {token.mean():5.2f}, std {token.std(unbiased=False):4.2f}")
print(f"after:  mean {normalised.mean():5.2f}, std {normalised.std(unbiased=False):4.2f}")
feature_bars({"before": token, "after LayerNorm": normalised}, title="One token's features")
plt.show()

# %% [markdown]
# And the reference equals PyTorch's layer once both have the same (here random, not
# default) `weight` and `bias`:

# %% tags=["nbval-check-output"]
torch_norm = nn.LayerNorm(16)
with torch.no_grad():
    torch_norm.weight.normal_()
    torch_norm.bias.normal_()
x = torch.randn(4, 7, 16)  # (batch, seq, d_model)
ours = reference.layer_norm(x, torch_norm.weight, torch_norm.bias)
print("equal to nn.LayerNorm within 1e-5:", torch.allclose(ours, torch_norm(x), atol=1e-5))

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
# `activation` argument, and `nn.Dropout(dropout)` on the hidden layer. `forward(x)`:
# `(batch, seq, d_model)` in, the same shape out,
# `linear2(dropout(activation(linear1(x))))`.


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
ff = reference.FeedForward(16, 64, activation="gelu")
sentence = torch.randn(1, 5, 16)
in_context = ff(sentence)[0, 3]
alone = ff(sentence[:, 3:4])[0, 0]  # token 3 as a sentence of one
print("token 3 alone = token 3 in its sentence:", torch.allclose(in_context, alone, atol=1e-6))

# %% [markdown]
# ## 4. Residual connections and the block's forward pass (20 min)
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
# attention weights and the feed-forward's hidden layer; the course's block does the same,
# so that in training mode the two agree wherever dropout strikes.
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
# ### Exercise 4.3: the block's forward pass (15 min)
#
# Write `encoder_block_forward(block, x, mask=None)` for a block built by
# `reference.EncoderBlock(d_model, num_heads, d_ff, dropout, activation, norm_first)`. It
# has:
#
# - `block.self_attn(query, mask=mask)`: multi-head self-attention returning
#   `(output, weights)`;
# - `block.feed_forward(x)`; `block.norm1`, `block.norm2` (LayerNorms);
#   `block.dropout1`, `block.dropout2`;
# - `block.norm_first`: False for post-norm, True for pre-norm.
#
# `x` is `(batch, seq, d_model)`; `mask` is `None` or a bool mask, True = may attend,
# broadcastable to `(batch, num_heads, seq, seq)`. Return the block's output, the same
# shape as `x`. Handle both layouts: the attention sublayer with `norm1`, `dropout1`, then
# the feed-forward sublayer (which reads the attention sublayer's result) with `norm2`,
# `dropout2`.


# %% tags=["exercise"]
def encoder_block_forward(block, x, mask=None):
    """One encoder block: attention, then feed-forward, each with dropout and a residual."""
    ### BEGIN SOLUTION
    if block.norm_first:
        x = x + block.dropout1(block.self_attn(block.norm1(x), mask=mask)[0])
        x = x + block.dropout2(block.feed_forward(block.norm2(x)))
    else:
        x = block.norm1(x + block.dropout1(block.self_attn(x, mask=mask)[0]))
        x = block.norm2(x + block.dropout2(block.feed_forward(x)))
    return x
    ### END SOLUTION


# %% tags=["check"]
check("4.3", encoder_block_forward)

# %% [markdown]
# ### The same function as `nn.TransformerEncoderLayer`
#
# `EncoderBlock.from_torch(layer)` builds a course block holding the weights of a
# batch-first PyTorch layer (PyTorch stacks the three input projections in one
# `in_proj_weight`; the copy splits it into `q_proj`, `k_proj`, `v_proj`). The two agree,
# for both layouts and both activations, with a padding mask too. PyTorch's
# `src_key_padding_mask` means the opposite of ours (True = padding, may **not** be
# attended), so we invert it in a named variable.

# %% tags=["nbval-check-output"]
x = torch.randn(3, 6, 32)  # (batch, seq, d_model)
keep = padding_mask(torch.tensor([6, 4, 2]), 6)  # (batch, seq): True at real tokens
src_key_padding_mask = ~keep  # PyTorch's convention: True at padding
for norm_first in (False, True):
    for activation in ("relu", "gelu"):
        layer = nn.TransformerEncoderLayer(
            32, 4, 64, activation=activation, norm_first=norm_first, batch_first=True
        ).eval()
        block = reference.EncoderBlock.from_torch(layer).eval()
        same = torch.allclose(block(x), layer(x), atol=1e-5) and torch.allclose(
            block(x, mask=keep[:, None, None, :]),
            layer(x, src_key_padding_mask=src_key_padding_mask),
            atol=1e-5,
        )
        layout = "pre-norm " if norm_first else "post-norm"
        print(f"{layout} {activation}: equal to PyTorch's layer, with and without mask: {same}")

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
# Stack 24 freshly initialised blocks and push a batch of random "sentences" through, in
# three versions: pre-norm with residuals, post-norm with residuals, and the same
# sublayers chained **without** residuals. Two measurements per depth:
#
# - how alike the tokens of a sentence have become (mean cosine similarity between
#   different tokens: 0 for unrelated vectors, 1 when every token is the same vector);
# - how large the gradient of a loss is with respect to each block's `q_proj` weight,
#   the signal that would teach that block what to attend to.
#
# (About 5 seconds.)

# %%
set_seed(0)
depth, d_model = 24, 64
x = torch.randn(8, 12, d_model)  # (batch, seq, d_model)
target = torch.randn(8, 12, d_model)  # something for a loss to pull towards
similarity, gradient = {}, {}
for name in ("pre-norm + residuals", "post-norm + residuals", "no residuals"):
    set_seed(1)  # the same initial weights for every version
    blocks = [
        reference.EncoderBlock(d_model, 4, 4 * d_model, norm_first=name.startswith("pre"))
        for _ in range(depth)
    ]
    h, alike = x, []
    for block in blocks:
        if name == "no residuals":  # the same sublayers, each output replacing its input
            h = block.self_attn(block.norm1(h))[0]
            h = block.feed_forward(block.norm2(h))
        else:
            h = block(h)
        unit = nn.functional.normalize(h, dim=-1)
        cosine = unit @ unit.transpose(1, 2)  # (batch, seq, seq)
        off_diagonal = ~torch.eye(12, dtype=torch.bool)
        alike.append(cosine[:, off_diagonal].mean().item())
    nn.functional.mse_loss(h, target).backward()
    similarity[name] = alike
    gradient[name] = [block.self_attn.q_proj.weight.grad.norm().item() for block in blocks]

fig, axes = plt.subplots(1, 2, figsize=(12, 4))
layers = range(1, depth + 1)
line_chart(
    layers,
    similarity,
    xlabel="block",
    ylabel="mean cosine similarity of tokens",
    title="How alike the tokens become",
    ax=axes[0],
)
line_chart(
    layers,
    gradient,
    xlabel="block",
    ylabel="gradient norm of q_proj.weight",
    title="Gradient reaching each block",
    logy=True,
    ax=axes[1],
)
plt.tight_layout()
plt.show()

# %% [markdown]
# Without residuals, the tokens are nearly identical after the first block and exactly
# alike from the second on, and the gradient reaching the attention layers falls by a
# factor of about a million within three blocks. The
# reason is the state of attention at initialisation: its scores are small, so each
# query spreads its weight almost evenly and receives almost the **average** of the
# values, the same vector for every token. Replace each token by that average and its
# identity is gone; the blocks above can no longer tell tokens apart, and nothing they
# attend to makes a difference to the loss. With residuals, each block *adds* its
# average to the token instead of replacing it, the tokens stay distinct, and every block
# receives a usable gradient. (Even with residuals the untrained tokens drift slowly
# together with depth; training teaches attention to do something sharper than
# averaging.)

# %% [markdown]
# ## 6. Post-norm or pre-norm, and stacking (5 min)
#
# In the right-hand plot, both residual stacks pass gradients to every block, but the
# post-norm stack's are about ten times smaller, and its tokens grow alike faster: every
# gradient on its way down passes through one LayerNorm per sublayer, while the pre-norm
# stack keeps a path from output to input made only of additions. That straight path is why pre-norm stacks train stably
# without the careful learning-rate warm-up the original post-norm transformer needed,
# and why GPT-2 and most models since use it. The price: a pre-norm block never
# normalises its own output, so a pre-norm stack ends with one extra LayerNorm.
# `reference.Encoder` stacks blocks and adds that final norm when `norm_first=True`:

# %%
stack = reference.Encoder(6, d_model=128, num_heads=4, d_ff=512, norm_first=True)
tokens = torch.randn(2, 10, 128)
print("output:", tuple(stack(tokens).shape), "(the shape goes in, the same shape comes out)")
print(f"parameters: {sum(p.numel() for p in stack.parameters()):,}")
print("final norm:", type(stack.final_norm).__name__)

# %% [markdown]
# ## 7. What a decoder block adds (15 min)
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
# That gives three families of models:
#
# | family | blocks | trained to | examples |
# |---|---|---|---|
# | encoder-only | encoder blocks | predict classes (cross-entropy on labels) or masked tokens | BERT (lesson 07), lesson 06's classifier |
# | decoder-only | decoder blocks without cross-attention | predict the next token at every position | GPT |
# | encoder-decoder | both, joined by cross-attention | predict the next target token given the source | the original translation model, T5 |
#
# In every case the loss is a cross-entropy: between predicted and true class, next
# token, or masked token.
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
# (PyTorch's `tgt_mask` is a float mask with $-\infty$ at the blocked entries; the course
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
# - Residuals keep tokens distinct and gradients flowing through deep stacks; without
#   them, near-uniform attention at initialisation erases every token's identity.
# - Post-norm normalises after the residual add (the original); pre-norm before the
#   sublayer (most models since), plus a final norm.
# - Given the same weights, the course's block equals `nn.TransformerEncoderLayer`.
# - Decoder blocks add causal self-attention and cross-attention to the encoder's output.
#
# Next, lesson 05 adds the one thing still missing: the order of the tokens.

# %% [markdown]
# # Lesson 03 · Multi-head attention
#
# **Goal:** run several attentions side by side, split and merge heads without scrambling tokens, and show your layer computes exactly what `torch.nn.MultiheadAttention` computes.
#
# **Time:** about 75 minutes.
#
# Lesson 02 gave every query one softmax over the keys: one set of weights, one graph of
# who looks at whom. This lesson runs several such attentions at once, each in its own
# small slice of the features:
#
# 1. why several heads (10 min);
# 2. cutting `d_model` into heads and gluing them back, exercises 3.1–3.2 (20 min);
# 3. the multi-head layer and dropout on its weights, exercise 3.3 (20 min);
# 4. PyTorch's weights in your layer, exercise 3.4 (10 min);
# 5. heads on a real sentence, one head against several (10 min);
# 6. self-attention and cross-attention (5 min).
#
# Each exercise has a one-line check cell under it: one line back when your code is
# right, one sentence naming the problem when it is not.
#
# **What carries over.** This lesson runs on your `scaled_dot_product_attention` from
# lesson 02 if it passed its check (the first code cell says whether it is yours or the
# course's). The `MultiHeadAttention` you write here is kept when its check passes:
# lesson 04 builds your encoder block from it, and the models of lessons 06 to 08 are
# stacks of those blocks. `parts.show()` lists, at any time, which parts are yours. In
# Colab, the first code cell offers to keep them in your Google Drive, since Colab forgets
# its files when the session ends.

# %%
import matplotlib.pyplot as plt
import torch
from torch import nn

from course_utils import attention as reference  # the course's own solutions, used by demos
from course_utils import get_device, parts, set_seed
from course_utils.exercises import check
from course_utils.plots import attention_heatmap, head_heatmaps
from course_utils.wordvectors import news_word_vectors, sentence_vectors

device = get_device()
set_seed(0)
parts.keep_on_google_drive()  # in Colab: asks to keep your parts in your Drive; elsewhere nothing

# Your attention function from lesson 02 if it passed its check, otherwise the course's.
attention_part = parts.get("attention")
scaled_dot_product_attention = attention_part.impl
print(f"scaled_dot_product_attention: {attention_part.origin} {attention_part.reason}".strip())

# %% [markdown]
# ## 1. Why several heads? (10 min)
#
# A sentence holds many relations at once. In "the troops fired on the gunmen", *fired*
# has a subject (*troops*), an object (*gunmen*) and neighbours; *the* mostly cares about
# the noun after it. One attention gives each query **one** unit of weight to spread over
# the keys, so a word that needs two different things gets a blend of them.
#
# Multi-head attention runs `num_heads` attentions in parallel. Each head has its own
# query, key and value maps, but smaller ones: with `d_model = 512` and 8 heads, each head
# works in `d_head = 512 / 8 = 64` dimensions. The heads' outputs are put side by side
# (8 × 64 = 512 features again) and a last linear map, `out_proj`, mixes them:
#
# ```
# x (batch, seq, d_model)
#   ├─ q_proj ─┐
#   ├─ k_proj ─┼─ split into heads ─ attention in every head ─ merge heads ─ out_proj ─ (batch, seq, d_model)
#   └─ v_proj ─┘    (batch, num_heads, seq, d_head)
# ```
#
# Each head draws its own graph, and because each works in `d_head = d_model / num_heads`
# dimensions, 8 heads cost the same parameters and nearly the same arithmetic as one head
# of full width.
#
# **One big projection is all the heads' projections at once.** We never build 8 small
# `nn.Linear(d_model, d_head)` layers. One `nn.Linear(d_model, d_model)` does it: its
# output features 0–63 are head 0's queries, features 64–127 head 1's, and so on. The
# cell below checks this for head 1, whose map is just rows 64–127 of the big weight.

# %%
d_model, num_heads = 512, 8
d_head = d_model // num_heads
q_proj = nn.Linear(d_model, d_model)
x = torch.randn(2, 10, d_model)  # (batch, seq, d_model)

head_1 = nn.Linear(d_model, d_head)  # a separate small map for head 1 ...
with torch.no_grad():  # ... given rows 64..127 of the big one
    head_1.weight.copy_(q_proj.weight[d_head : 2 * d_head])
    head_1.bias.copy_(q_proj.bias[d_head : 2 * d_head])
same = torch.allclose(q_proj(x)[..., d_head : 2 * d_head], head_1(x), atol=1e-5)
print(f"head 1's queries from the big projection equal a separate small one: {same}")

# %% [markdown]
# ## 2. Cutting `d_model` into heads, and gluing them back (20 min)
#
# After the projections, the queries have shape `(batch, seq, d_model)`. Attention needs
# each head as its own batch of sequences, `(batch, num_heads, seq, d_head)`, so that
# `scaled_dot_product_attention` from lesson 02 treats `num_heads` as one more leading
# axis. Two steps get there:
#
# 1. `reshape` to `(batch, seq, num_heads, d_head)`: cut each token's features into
#    `num_heads` consecutive blocks;
# 2. `transpose(1, 2)` to `(batch, num_heads, seq, d_head)`: bring the head axis in front
#    of `seq`.
#
# Why not reshape straight to `(batch, num_heads, seq, d_head)`? A reshape never moves
# numbers; it only re-reads them in memory order (last axis fastest). Read that way, the
# first `seq × d_head` numbers of a sentence become "head 0", and they are the first
# tokens' **whole** feature vectors, not every token's first block. The shape is right,
# the contents are scrambled. To see it, fill a small tensor with labels: entry
# `100 * token + feature`.

# %% tags=["nbval-check-output"]
labels = (100 * torch.arange(3)[:, None] + torch.arange(8)).float()[None]  # (1, 3, 8)
print("tokens (rows) and their 8 features:\n", labels[0].int())
right = labels.reshape(1, 3, 2, 4).transpose(1, 2)  # (batch, num_heads, seq, d_head)
wrong = labels.reshape(1, 2, 3, 4)  # the same shape, straight from a reshape
print("head 0, reshape then transpose (features 0-3 of every token):\n", right[0, 0].int())
print("head 0, reshape straight to heads (tokens cut in the wrong places):\n", wrong[0, 0].int())

# %% [markdown]
# In the right split, head 0 holds features 0–3 of tokens 0, 1 and 2. In the wrong one,
# head 0's row 1 holds 4–7, the second half of token 0, and its row 2 the first half of
# token 1: positions and features are mixed, and nothing raises an error.
#
# ### Exercise 3.1: split the heads (5 min)
#
# Write `split_heads(x, num_heads)`: input `(batch, seq, d_model)`, output
# `(batch, num_heads, seq, d_head)` with `d_head = d_model // num_heads`, head `h`
# holding features `h * d_head` to `(h + 1) * d_head - 1` of every token.


# %% tags=["exercise"]
def split_heads(x, num_heads):
    """(batch, seq, d_model) -> (batch, num_heads, seq, d_head)."""
    ### BEGIN SOLUTION
    batch, seq, d_model = x.shape
    x = x.reshape(batch, seq, num_heads, d_model // num_heads)  # (batch, seq, num_heads, d_head)
    return x.transpose(1, 2)  # (batch, num_heads, seq, d_head)
    ### END SOLUTION


# %% tags=["check"]
check("3.1", split_heads)

# %% [markdown]
# ### Exercise 3.2: merge the heads (5 min)
#
# After attention every head has produced `(batch, num_heads, seq, d_head)`. Write
# `merge_heads(x)` returning `(batch, seq, d_model)`, the exact inverse of `split_heads`:
# token `t`'s output is head 0's features for token `t`, then head 1's, and so on.
#
# A viewer of the video this course grew from asked: *"What is the point of the permute?
# Can we not specify the shape we want in the reshape call?"* Another spotted that the
# video's code reshaped `(batch, num_heads, seq, d_head)` straight to
# `(batch, seq, d_model)`. Both point at the same trap as above, in reverse: a reshape
# only regroups neighbours in memory, and in `(batch, num_heads, seq, d_head)` the
# neighbours of head 0's token 0 are head 0's token 1, not head 1's token 0. So first move
# the head axis back next to `d_head` (`transpose(1, 2)`, or `permute(0, 2, 1, 3)`), then
# reshape. No error will warn you if you forget: the shapes match either way. (After a
# transpose the memory is no longer in order, so `.view` refuses to work; `.reshape`
# copies when it must, or call `.contiguous()` before `.view`.)


# %% tags=["exercise"]
def merge_heads(x):
    """(batch, num_heads, seq, d_head) -> (batch, seq, d_model)."""
    ### BEGIN SOLUTION
    batch, num_heads, seq, d_head = x.shape
    x = x.transpose(1, 2)  # (batch, seq, num_heads, d_head)
    return x.reshape(batch, seq, num_heads * d_head)
    ### END SOLUTION


# %% tags=["check"]
check("3.2", merge_heads)

# %% [markdown]
# Round trip with the labelled tensor: merging the right way gives back the tokens we
# started from, merging by a bare reshape does not.

# %% tags=["nbval-check-output"]
heads = reference.split_heads(labels, num_heads=2)  # (1, 2, 3, 4)
print("merge_heads(split_heads(x)) == x:", torch.equal(reference.merge_heads(heads), labels))
print("bare reshape back, token 1:", heads.reshape(1, 3, 8)[0, 1].int().tolist())

# %% [markdown]
# The bare reshape's "token 1" is half of token 2 (200–203) glued to half of token 0
# (4–7).

# %% [markdown]
# ## 3. The multi-head layer (20 min)
#
# ### Exercise 3.3: `MultiHeadAttention` (20 min)
#
# Write the class `MultiHeadAttention(d_model, num_heads, dropout=0.0)`, an `nn.Module`.
#
# `__init__`:
# - raise a `ValueError` naming both numbers when `num_heads` does not divide `d_model`
#   (`MultiHeadAttention(10, 3)` must fail: heads of 3.33 features do not exist);
# - create `q_proj`, `k_proj`, `v_proj` and `out_proj`, each `nn.Linear(d_model, d_model)`,
#   and `self.dropout = nn.Dropout(dropout)`. Use exactly these names: the checker copies
#   its weights into yours by name, the way `load_state_dict` does.
#
# `forward(query, key=None, value=None, mask=None)` returns `(output, weights)`:
# - `query` is `(batch, seq_q, d_model)`; `key` and `value` are `(batch, seq_k, d_model)`.
#   When `key` is `None` it is the query (self-attention); when `value` is `None` it is
#   the key;
# - project with the three maps, split each into heads with your `split_heads`, and call
#   `scaled_dot_product_attention(q, k, v, mask)` (yours from lesson 02, see the first code
#   cell) on the four-dimensional heads;
# - mix the values with the dropped-out weights, `heads = self.dropout(weights) @ v` (see
#   below), then merge the heads and apply `out_proj`;
# - `output` is `(batch, seq_q, d_model)`, `weights` is `(batch, num_heads, seq_q, seq_k)`.
#
# `mask` is boolean, True = may attend, and must broadcast to
# `(batch, num_heads, seq_q, seq_k)`: a causal mask `(seq_q, seq_k)` works as it is, and a
# padding mask `(batch, seq_k)` becomes `mask[:, None, None, :]`, shape `(batch, 1, 1,
# seq_k)`: the same for every head and every query.
#
# Which scale? Inside a head the dot products run over `d_head` features, so the right
# divisor is $\sqrt{d_{head}}$, not $\sqrt{d_{model}}$. Lesson 02's function takes it from
# `query.size(-1)`, which after the split *is* `d_head`. (A viewer asked whether it should
# be `q.size(-1)` or `k.size(-1)`: queries and keys meet in a dot product, so the two are
# always equal.)
#
# **Dropout on the attention weights.** Transformers are regularised by dropping some
# attention weights while training: `nn.Dropout(p)` sets each weight to zero with
# probability `p` and multiplies the survivors by `1 / (1 - p)`, so each query ignores a
# few random keys at each step while the expected output stays the same. In evaluation
# mode (after `.eval()`) it does nothing at all. PyTorch's `nn.MultiheadAttention(...,
# dropout=p)` does exactly this, and lesson 04 uses it in every block. Lesson 02's function
# has no dropout argument, so take only its `weights` and do the mixing yourself:
# `self.dropout(weights) @ v`. In evaluation mode that is `weights @ v`, the output the
# function computed. The `weights` you return are the ones before dropout (PyTorch's layer
# returns them after: section 4). The checker also runs your layer in training mode with
# `dropout=0.3`, to see that the dropout strikes the weights and nothing else.


# %% tags=["exercise"]
class MultiHeadAttention(nn.Module):
    """Multi-head attention; forward returns (output, weights), mask True = may attend."""

    def __init__(self, d_model, num_heads, dropout=0.0):
        super().__init__()
        ### BEGIN SOLUTION
        if d_model % num_heads != 0:
            raise ValueError(f"num_heads={num_heads} must divide d_model={d_model}")
        self.num_heads = num_heads
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)
        ### END SOLUTION

    def forward(self, query, key=None, value=None, mask=None):
        ### BEGIN SOLUTION
        key = query if key is None else key
        value = key if value is None else value
        q = split_heads(self.q_proj(query), self.num_heads)  # (batch, num_heads, seq_q, d_head)
        k = split_heads(self.k_proj(key), self.num_heads)  # (batch, num_heads, seq_k, d_head)
        v = split_heads(self.v_proj(value), self.num_heads)
        _, weights = scaled_dot_product_attention(q, k, v, mask)  # (batch, num_heads, seq_q, seq_k)
        heads = self.dropout(weights) @ v  # (batch, num_heads, seq_q, d_head)
        return self.out_proj(merge_heads(heads)), weights  # (batch, seq_q, d_model)
        ### END SOLUTION


# %% tags=["check"]
check("3.3", MultiHeadAttention)

# %% [markdown]
# **Why does forgetting `out_proj` matter, if the heads already computed everything?**

# %% [markdown] tags=["solution"]
# **Answer.** Without it, output features 0–63 come only from head 0, features 64–127
# only from head 1, and so on: the heads never combine. `out_proj` lets every output feature draw on
# every head, and it is where the model learns how much each head's finding counts.

# %% [markdown]
# ## 4. PyTorch's weights in your layer (10 min)
#
# `torch.nn.MultiheadAttention` computes the same output as your class, with four
# differences in bookkeeping:
#
# - it keeps the three input projections stacked in one `in_proj_weight` of shape
#   `(3 * d_model, d_model)`, rows `[q; k; v]`, and their biases in one `in_proj_bias` of
#   shape `(3 * d_model,)`; `out_proj` is an ordinary `nn.Linear`;
# - its boolean masks mean the **opposite**: True = blocked. We invert ours explicitly,
#   in a named variable;
# - it averages the weights over heads unless told `average_attn_weights=False`;
# - in training mode, the weights it returns are the ones after dropout, those that mixed
#   the values; yours returns them before. In evaluation mode, as below, the two are the
#   same.
#
# ### Exercise 3.4: `load_from_torch` (10 min)
#
# Write `load_from_torch(mha, layer)`: copy the weights of `layer`, an
# `nn.MultiheadAttention`, into `mha`, an instance of your `MultiHeadAttention` with the
# same `d_model` and `num_heads`, and return `mha`.
#
# - Split `in_proj_weight` and `in_proj_bias` into three equal blocks along their first
#   axis (`.chunk(3)`), for `q_proj`, `k_proj` and `v_proj`, in that order.
# - `nn.Linear` stores its weight as `(out_features, in_features)`, exactly like each
#   block, so no transpose is needed.
# - Copy **values**, inside `with torch.no_grad():`, with `parameter.copy_(source)`. A view
#   or an assignment to `.data` would make the two modules share memory, so training one
#   would change the other.


# %% tags=["exercise"]
def load_from_torch(mha, layer):
    """Copy nn.MultiheadAttention `layer`'s weights into your `mha`; return `mha`."""
    ### BEGIN SOLUTION
    q_w, k_w, v_w = layer.in_proj_weight.chunk(3)  # each (d_model, d_model)
    q_b, k_b, v_b = layer.in_proj_bias.chunk(3)  # each (d_model,)
    with torch.no_grad():
        for proj, weight, bias in (
            (mha.q_proj, q_w, q_b),
            (mha.k_proj, k_w, k_b),
            (mha.v_proj, v_w, v_b),
            (mha.out_proj, layer.out_proj.weight, layer.out_proj.bias),
        ):
            proj.weight.copy_(weight)
            proj.bias.copy_(bias)
    return mha
    ### END SOLUTION


# %% tags=["check"]
check("3.4", load_from_torch)

# %% [markdown]
# Now the proof, on **your** class: PyTorch's layer with random weights, the same weights
# loaded into your `MultiHeadAttention`, and both run on the same inputs, with no mask, a
# padding mask and a causal mask. Only the masks' polarity differs between the two calls.
# (Until an exercise's check passes, this cell and the ones below say so and use the
# course's version in its place.)

# %% tags=["nbval-check-output"]
Attention = parts.yours_or_reference("3.3", MultiHeadAttention)
loader = parts.yours_or_reference("3.4", load_from_torch)
torch_layer = nn.MultiheadAttention(d_model, num_heads, batch_first=True).eval()
with torch.no_grad():  # PyTorch starts its biases at zero: make them count
    torch_layer.in_proj_bias.normal_()
    torch_layer.out_proj.bias.normal_()
mine = loader(Attention(d_model, num_heads), torch_layer).eval()
x = torch.randn(3, 6, d_model)
keep = reference.padding_mask(torch.tensor([6, 4, 2]), 6)  # (batch, seq), True = real token
allowed = reference.causal_mask(6)  # (seq, seq), True = may attend

pairs = {
    "no mask": (mine(x), torch_layer(x, x, x, average_attn_weights=False)),
    "padding mask": (
        mine(x, mask=keep[:, None, None, :]),
        torch_layer(x, x, x, key_padding_mask=~keep, average_attn_weights=False),
    ),
    "causal mask": (
        mine(x, mask=allowed),
        torch_layer(x, x, x, attn_mask=~allowed, average_attn_weights=False),
    ),
}
for name, ((out, w), (out_t, w_t)) in pairs.items():
    gap = max((out - out_t).abs().max().item(), (w - w_t).abs().max().item())
    print(f"{name:13s} your output and per-head weights equal PyTorch's within 1e-5: {gap < 1e-5}")

# %% [markdown]
# ## 5. Heads on a real sentence (10 min)
#
# To watch heads at work without training anything, take real word vectors (the 48-
# dimensional news vectors of lesson 02) and set every projection to the identity. Then
# with 4 heads, head 0 compares words using features 0–11 only, head 1 using features
# 12–23, and so on, while a single head compares them on all 48 at once. As in lesson 02
# the diagonal is masked, so each word must look at the *other* words.
#
# One more step: we rescale every word vector to the same length, √48. Raw word vectors
# differ a lot in length (here from 3.2 for *fired* to 13.5 for *palestinian*), and a dot
# product grows with length, so without it the longest words win in every head and every
# row, whatever the features say. A trained model learns its projections, so its heads
# pick out far more useful relations than these slices do; the mechanics are the same.

# %%
vectors = news_word_vectors()


def equal_length(x):
    """Rescale every token vector to length √d_model, so only directions decide."""
    return x / x.norm(dim=-1, keepdim=True) * x.size(-1) ** 0.5


def identity_attention(num_heads):
    """A MultiHeadAttention over 48 features whose four projections are the identity."""
    layer = Attention(48, num_heads).eval()
    with torch.no_grad():
        for proj in (layer.q_proj, layer.k_proj, layer.v_proj, layer.out_proj):
            proj.weight.copy_(torch.eye(48))
            proj.bias.zero_()
    return layer


words = "israeli troops fired on palestinian gunmen in the west bank".split()
x = equal_length(sentence_vectors(words, vectors)[None])  # (1, seq, 48)
not_self = ~torch.eye(len(words), dtype=torch.bool)  # (seq, seq): nobody attends to itself

weights = {}
with torch.no_grad():
    for count in (1, 4):
        _, weights[count] = identity_attention(count)(x, mask=not_self)  # (1, count, seq, seq)

head_heatmaps(weights[4][0], words, words, suptitle="Four heads, four graphs")
plt.show()

# %% [markdown]
# All four panels share one colour scale (the bar on the right), so a bright cell means
# the same weight in every head. A table makes the heads easy to compare: for every word,
# the word it attends to most in each head.

# %%
print(f"{'word':12s} " + " ".join(f"{'head ' + str(h):12s}" for h in range(4)))
favourites = []
for i, word in enumerate(words):
    favourites.append([words[int(weights[4][0, h, i].argmax())] for h in range(4)])
    print(f"{word:12s} " + " ".join(f"{f:12s}" for f in favourites[-1]))
distinct = sum(len(set(row)) for row in favourites) / len(words)
print(f"different favourites per word, out of 4 heads: {distinct:.1f} on average")

# %% [markdown]
# ### One head against several
#
# What does the single 48-feature head do with these four opinions? With the identity
# projections used here (and only then) there is an exact answer. The single head's score
# for a pair of words is the sum of the four heads' dot products (a dot product over 48
# features is the sum of four dot products over 12), divided by √48 instead of √12: half
# the sum of the heads' scaled scores. Exponentiating turns the sum into a product, so the
# single head's weights are proportional to $\prod_h w_h^{1/2}$, the heads' weights
# **multiplied**. A key gets a large weight only if no head gives it a small one: one
# head that dislikes a word vetoes it, however much the others like it.

# %%
product = weights[4][0].prod(dim=0) ** 0.5  # (seq, seq)
product = product / product.sum(dim=-1, keepdim=True)  # back to rows that sum to 1
agrees = torch.allclose(product, weights[1][0, 0], atol=1e-5)
print(f"one head's weights = normalised product of the four heads' weights: {agrees}")
for i, word in enumerate(words):
    single = words[int(weights[1][0, 0, i].argmax())]
    votes = favourites[i].count(single)
    print(f"{word:12s} one head's favourite: {single:12s} (the favourite of {votes} of 4 heads)")
attention_heatmap(weights[1][0, 0], words, words, title="One head over all 48 features")
plt.show()

# %% [markdown]
# Look at the words whose heads disagree: the single head's favourite can be a word that
# only one head ranks first, or none (*the* ends up on *fired*), because it is the word
# no head objects to. In a
# trained model the single head learns its own projections, so the product rule no longer
# holds exactly, but the limit it illustrates stays: one head has one softmax per query,
# one unit of weight to share. To attend to two words for two different reasons it must
# split that unit between them, and their two values arrive blended. Several heads each
# spend a full unit on their own relation, and `out_proj` combines the results.

# %% [markdown]
# **Think: a word attends strongly to key A in head 0 and to key B in head 1. What does
# the single head give it?**

# %% [markdown] tags=["solution"]
# **Answer.** In the product, A is weighed down by head 1 and B by head 0.
# The single head favours whichever key no head dislikes much, which may be A, B or a
# third word the two heads both rank second: the two sharp, different preferences are
# lost. Several heads keep them apart.

# %% [markdown]
# ## 6. Self-attention and cross-attention (5 min)
#
# So far queries, keys and values all came from one sequence: **self-attention**. Nothing
# in the layer requires that. Give it queries from one sequence and keys and values from
# another and it becomes **cross-attention**: each word of the first sequence gathers
# information from the second. This is how the decoder of a translation model reads the
# source sentence (lesson 04 shows one). The weight matrix is no longer square:
# `(seq_q, seq_k)`, one row per query word, one column per word of the other sentence.

# %%
query_words = "troops fired on gunmen".split()
source_words = "israeli army helicopters attacked palestinian militants near gaza".split()
with torch.no_grad():
    source = equal_length(sentence_vectors(source_words, vectors)[None])  # (1, seq_k, 48)
    queries = equal_length(sentence_vectors(query_words, vectors)[None])  # (1, seq_q, 48)
    out, cross = identity_attention(1)(queries, source)
print("output", tuple(out.shape), "weights", tuple(cross.shape), "(batch, num_heads, seq_q, seq_k)")
attention_heatmap(cross[0, 0], query_words, source_words, title="Cross-attention")
plt.show()

# %% [markdown]
# Each row is one word of the short sentence looking for its counterparts in the long
# one. With nothing trained, the matches come from the word vectors alone: *fired* and
# *gunmen* look most at *attacked*, the source's verb of violence, and *troops* splits its
# weight between *near* and *army*, its counterpart. The output has one vector per *query* word (4), each a mix of
# the source sentence's value vectors (8 of them). Masks work the same way: a padding mask
# `(batch, 1, 1, seq_k)` hides the source's padding; a causal mask makes no sense here,
# since the two sequences' positions do not correspond.

# %% [markdown]
# ## Summary
#
# - Multi-head attention runs `num_heads` attentions side by side, each on `d_head =
#   d_model / num_heads` features, then merges them and mixes them with `out_proj`.
# - One `nn.Linear(d_model, d_model)` holds every head's projection; splitting is a
#   `reshape` to `(batch, seq, num_heads, d_head)` then a `transpose(1, 2)`.
# - Merging must move the head axis back **before** reshaping: a bare reshape gives the
#   right shape and scrambled tokens, with no error.
# - Each head divides by $\sqrt{d_{head}}$; masks broadcast over the head axis.
# - In training, dropout zeroes some attention weights (and rescales the rest); in
#   evaluation mode it does nothing.
# - Given the same weights (`in_proj_weight` split in three, `out_proj` copied) your layer
#   equals `nn.MultiheadAttention`, whose masks mean True = blocked, so invert them.
# - Self-attention: queries, keys and values from one sequence. Cross-attention: queries
#   from one, keys and values from another.
#
# Next, lesson 04 wraps your layer with a feed-forward network, residual connections and
# layer normalisation into a full encoder block. `parts.show()` prints which of your
# parts it will use.

# %%
parts.show()

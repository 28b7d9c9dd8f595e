# %% [markdown]
# # Lesson 01 · Text and images as vectors
#
# **Goal:** turn words (and image patches) into vectors, measure how similar two vectors are, and compute a first attention: one word weighing other words with softmax(q·k/√d).
#
# **Time:** about 95 minutes.
#
# A transformer never sees letters or pixels. It sees a sequence of vectors, one per
# token, and everything it does is arithmetic on those vectors. This lesson builds that
# starting point and ends with the operation at the heart of every transformer:
#
# 1. from text to tokens: words, a vocabulary, and subwords (15 min);
# 2. one-hot vectors against dense ones (5 min);
# 3. Word2Vec: dense word vectors learned from a million words of text (10 min);
# 4. cosine similarity and nearest neighbours, exercises 1.1–1.2 (20 min);
# 5. a 2-D map of the vectors (5 min);
# 6. images as vectors: patches (10 min);
# 7. a first attention: a stable softmax and attention weights, exercises 1.3–1.4, and an
#    interactive demo (25 min);
# 8. transformers and recurrent networks (5 min).
#
# Each exercise is followed by a one-line check cell. Run it: one line comes back when
# your code is right, one sentence saying what to fix when it is not.
#
# **What carries over.** From lesson 02 on, each part you write is kept once its check
# passes, and the models of lessons 06 to 08 are built from them. This lesson's exercises
# are tools for looking at vectors and are not reused, but its ideas are: lesson 02 turns
# the attention of section 7 into the real computation, and the classifier of lesson 06
# starts its word vectors from Word2Vec, trained on reviews.

# %%
import math
import time

import matplotlib.pyplot as plt
import torch
from torch import nn

from course_utils import embeddings as reference  # the course's own solutions, used by demos
from course_utils import get_device, set_seed
from course_utils.data import brown_sentences
from course_utils.exercises import check
from course_utils.plots import patch_grid, word_map
from course_utils.widgets import AttentionExplorer

device = get_device()
set_seed(0)
started = time.perf_counter()

# %% [markdown]
# ## 1. From text to tokens (15 min)
#
# Our text is the **Brown corpus**: about a million words of American English from 1961,
# in 500 samples of news, fiction, science, religion and more. `brown_sentences()` loads
# it through `nltk` (downloading it once, about 3 MB, if it is not on your machine yet)
# and returns every sentence as a list of lowercase words; punctuation is left out.
# If the download is impossible, it says so and falls back to a small news corpus that
# ships with `gensim`, so the notebook still runs, with different numbers; demos then
# leave out, and name, the words that corpus does not know.

# %%
sentences = brown_sentences(fallback=True)
num_words = sum(len(s) for s in sentences)
print(f"{len(sentences):,} sentences, {num_words:,} words")
print(sentences[0])

# %% [markdown]
# Splitting text into pieces is called **tokenisation**, and the pieces are **tokens**.
# The simplest choice is one token per word. `tokenize_words` lowercases a string and
# splits it into words, numbers and punctuation marks:

# %%
print(reference.tokenize_words("The bank's river-side branch opened at 9, on Monday."))

# %% [markdown]
# A model can only handle a fixed set of tokens, its **vocabulary**, each identified by
# an integer id. Words seen fewer than 5 times are usually left out (there is too little
# evidence to learn anything about them); they all share one id, `<unk>` for "unknown".

# %%
vocabulary = reference.build_vocabulary((w for s in sentences for w in s), min_count=5)
print(f"{len(vocabulary):,} tokens in the vocabulary (id 0 is {reference.UNKNOWN})")
print("the 10 most frequent:", list(vocabulary)[1:11])
ids = reference.encode("the bank of the river flooded the zyzzyva".split(), vocabulary)
print("ids:", ids)

# %% [markdown]
# Word-level vocabularies have two problems. Every rare or new word collapses into the
# same `<unk>` (the zyzzyva, a weevil, above), and related forms such as *flood*,
# *floods*, *flooded* and *flooding* are unrelated ids that must each be learned
# separately.
#
# Modern models therefore split text into **subwords**. A byte-pair-encoding (BPE)
# tokenizer starts from single characters and repeatedly glues together the most frequent
# adjacent pair, until the vocabulary has the size you ask for. Frequent words end up as
# one token; rare words are spelled out in a few frequent pieces. Training one on Brown
# takes a couple of seconds. `##` marks a piece that continues a word, so *bank* at the
# start of a word and *##bank* inside one are different tokens:

# %%
subword_tokenizer = reference.train_subword_tokenizer(
    (" ".join(s) for s in sentences), vocab_size=4000
)
for text in ["the river flooded", "floods", "riverbanks", "tokenization", "zyzzyva", "naïve"]:
    print(f"{text:>18} → {subword_tokenizer.encode(text).tokens}")

# %% [markdown]
# With only 4,000 subwords learned from a million words, the splits are not always the
# ones a linguist would choose, but any word written with characters seen in training
# gets a spelling. A character never seen still becomes `[UNK]`: Brown has no accented
# letters, so the diaeresis of *naïve* is unknown, and so is every Chinese character.
# BERT, which lesson 07 probes, uses a close cousin of this tokenizer (WordPiece, 30,000
# subwords) and has the same gap for characters outside its vocabulary, such as most
# emoji. GPT models use **byte-level** BPE, with 50,000 or more
# tokens: it starts from the 256 possible byte values instead of characters, so any text,
# in any script, can be encoded. In this lesson we stay with whole words, which are
# easier to read.

# %% [markdown]
# ## 2. One-hot vectors against dense vectors (5 min)
#
# The most direct way to make an id a vector is **one-hot**: a vector as long as the
# vocabulary, all zeros except a 1 at the token's id.

# %%
words = ["bank", "money", "river"]
word_ids = torch.tensor(reference.encode(words, vocabulary))
one_hots = reference.one_hot(word_ids, len(vocabulary))  # (3 words, vocab_size)
print("one-hot shape:", tuple(one_hots.shape))
print("dot products (rows and columns: bank, money, river):", (one_hots @ one_hots.T).tolist())

# %% [markdown]
# One-hot vectors are huge (one number per vocabulary entry, almost all zeros) and every
# pair of different words is equally unrelated: each dot product is 0. *bank* is exactly
# as far from *money* as from *river*. A **dense** embedding gives each token a short
# vector of real numbers (100 here, 768 in BERT-base) that is *learned*, so that words
# used in similar ways end up with similar vectors. In a transformer the embedding is a
# table `nn.Embedding(vocab_size, d_model)`; looking up row `i` is the same as multiplying
# the one-hot vector of `i` by that table, only much cheaper:

# %% tags=["nbval-check-output"]
embedding = nn.Embedding(len(vocabulary), 100)  # (vocab_size, d_model), random until trained
looked_up = embedding(word_ids)  # (3, 100): three rows of the table
multiplied = one_hots @ embedding.weight  # (3, vocab_size) @ (vocab_size, 100)
print("lookup equals one-hot times table:", torch.allclose(looked_up, multiplied))

# %% [markdown]
# ## 3. Word2Vec on the Brown corpus (10 min)
#
# Word2Vec (Mikolov et al., 2013) learns dense vectors from one idea: *a word is known by
# the company it keeps*. Its CBOW variant slides a window over the text and trains a tiny
# network to predict each word from the average of its neighbours' vectors (here up to 5
# on each side). Words that appear in similar contexts get pushed towards similar vectors.
#
# The settings below train on the whole corpus in under a minute on an idle laptop core
# (several times longer on a busy machine): 100-dimensional vectors, words seen at least
# 5 times, 20 passes over the text.
# `workers=1` makes training fully reproducible: with one thread the vectors depend only
# on the seed, so you will see the same neighbours as the solution notebook. (Several
# threads would be faster on a multicore machine, but the order in which they update the
# vectors varies, and so would every number below.)

# %%
tic = time.perf_counter()
vectors = reference.train_word2vec(
    sentences, vector_size=100, window=5, min_count=5, epochs=20, seed=0, workers=1
)
print(
    f"trained in {time.perf_counter() - tic:.0f} s: {len(vectors):,} words, {vectors.vector_size} numbers each"
)
print("the first 6 numbers of 'bank':", vectors["bank"][:6].round(2))

# %% [markdown]
# `vectors` behaves like a dictionary from word to vector (a NumPy array). The
# exercises work on tensors, so here is the whole table as one tensor, one row per word;
# row `i` belongs to the word `words_in_order[i]`:

# %%
table = torch.tensor(vectors.vectors)  # (vocab_size, 100)
words_in_order = vectors.index_to_key  # the word of each row
print(tuple(table.shape), words_in_order[:8])

# %% [markdown]
# ## 4. Similarity and neighbours (20 min)
#
# Two vectors are similar when they point in the same direction. The **cosine
# similarity** measures exactly that, ignoring their lengths:
#
# $$\cos(a, b) = \frac{a \cdot b}{\lVert a \rVert\, \lVert b \rVert}, \qquad
# \lVert a \rVert = \sqrt{a \cdot a}.$$
#
# It is 1 for the same direction, 0 for perpendicular vectors and −1 for opposite ones.
# Lengths are left out on purpose: a word vector's length depends on how often and how
# consistently the word is used, and similarity should depend on the direction alone.
#
# ### Exercise 1.1: cosine similarity (5 min)
#
# Write `cosine_similarity(a, b)` for tensors of shape `(..., d)` (any number of leading
# axes, broadcast against each other) returning shape `(...)`: the cosine along the last
# axis. Write it with tensor operations only (no loop), so that it works unchanged for
# one pair of vectors and for whole tables of them.


# %% tags=["exercise"]
def cosine_similarity(a, b):
    """Return the cosine similarity of a and b along the last axis: (..., d) -> (...)."""
    ### BEGIN SOLUTION
    return (a * b).sum(dim=-1) / (a.norm(dim=-1) * b.norm(dim=-1))
    ### END SOLUTION


# %% tags=["check"]
check("1.1", cosine_similarity)

# %% [markdown]
# A few pairs, with the course's reference version (so this runs even before you finish):

# %%
for first, second in [("river", "water"), ("money", "bank"), ("river", "bank"), ("river", "money")]:
    similarity = reference.cosine_similarity(
        torch.tensor(vectors[first]), torch.tensor(vectors[second])
    )
    print(f"cos({first}, {second}) = {similarity:.2f}")

# %% [markdown]
# Never test such numbers for exact equality (`==`): floating-point arithmetic rounds, and
# the same formula computed in another order differs in the last digits. Compare with a
# tolerance, as `torch.allclose` or `math.isclose` do.
#
# ### Exercise 1.2: nearest neighbours (10 min)
#
# Write `nearest_neighbours(query, embeddings, k=5)`:
#
# - `query` has shape `(d,)`, `embeddings` shape `(vocab_size, d)`;
# - return `(similarities, indices)`, both of shape `(k,)`: the cosine similarities of the
#   `k` rows most similar to `query`, and their row numbers, most similar first.
#
# Use your `cosine_similarity` to compare the query with every row in one call (how do
# the shapes `(d,)` and `(vocab_size, d)` broadcast, and what shape comes out?), then look
# up `torch.topk`.


# %% tags=["exercise"]
def nearest_neighbours(query, embeddings, k=5):
    """Return (similarities, indices) of the k rows of embeddings most similar to query."""
    ### BEGIN SOLUTION
    similarities = cosine_similarity(query[None, :], embeddings)  # (vocab_size,)
    return torch.topk(similarities, k)
    ### END SOLUTION


# %% tags=["check"]
check("1.2", nearest_neighbours)

# %% [markdown]
# The five nearest neighbours of a few words (the word itself, at similarity 1, left out).
# `neighbours_of` wraps the reference `nearest_neighbours` around the word table: it
# passes the word's row as the query, asks for `k + 1` rows and drops the word itself.
# Once your check passes, try yours on `table` the same way.

# %%
for word in ["bank", "money", "king", "river"]:
    neighbours = reference.neighbours_of(word, vectors, k=5)
    print(f"{word:>6}: " + ", ".join(f"{w} ({s:.2f})" for w, s in neighbours))

# %% [markdown]
# *river* and *money* get sensible company: landscape words for one, paying and taxes for
# the other. *king* sits among first names: in Brown almost half of its 88 occurrences are
# part of a name (King James 10 times, mostly the Bible; a hotel called the King Arthur 7
# times, all in one story; Mrs. King; King Lear). *bank* is the weakest: it occurs only
# 83 times in the whole corpus, in a mix of senses. About a third are names (14 of them
# the Export-Import Bank, all in one government document), most of the others are about
# money too (accounts, loans, a bank robber), and only about 15 are the bank of a river.
# With so few and such mixed uses, its neighbours are places and institutions.
# A single vector per word has to average all the ways the word is used; attention, at
# the end of this lesson, is the first step towards vectors that depend on the context.
#
# (Word2Vec's arithmetic can round differently on another processor, so on your machine
# the order of close neighbours may differ slightly from the solution notebook.)

# %% [markdown]
# **Think: how would you get better neighbours for *bank*?**

# %% [markdown] tags=["solution"]
# **Answer.** More text is the big lever:
# Word2Vec trained on billions of words separates senses far better than on one million.
# Within Brown, more epochs or the skip-gram variant help rare words a little. But no
# amount of data lets one vector per word hold two meanings: for that the vector must
# depend on the sentence, which is what contextual models such as BERT compute.

# %% [markdown]
# ## 5. A map of the vectors (5 min)
#
# 100 dimensions cannot be drawn, but we can look at their shadow on a plane. **Principal
# component analysis** (PCA) finds the two directions along which the vectors vary most,
# and `pca_2d` projects each vector onto them. Distances on the map are only a rough
# guide (most of the 100 dimensions are flattened away), yet groups of related words
# usually stay together. Look for *bank*: which group does it sit with?

# %%
groups = {
    "money": ["money", "bank", "loan", "tax", "price", "dollars", "cost", "pay", "income"],
    "water": ["river", "water", "lake", "sea", "boat", "shore", "valley", "hills"],
    "family": ["mother", "father", "son", "daughter", "wife", "husband", "brother"],
}
groups = {name: reference.known_words(ws, vectors) for name, ws in groups.items()}
map_words = [w for ws in groups.values() for w in ws]
map_groups = [g for g, ws in groups.items() for _ in ws]
points = reference.pca_2d(torch.tensor(vectors[map_words]))  # (num_words, 2)
word_map(points, map_words, map_groups).set_title("Brown Word2Vec vectors, projected by PCA")
plt.show()

# %% [markdown]
# ## 6. Images as vectors (10 min)
#
# Transformers are not only for text. A Vision Transformer (ViT) makes an image into a
# sequence of tokens by cutting it into square **patches**, say 16×16 pixels, reading them
# row by row like words in a sentence, and flattening each into one long vector. A
# 224×224 colour image becomes 14 × 14 = 196 patches of 16 × 16 × 3 = 768 numbers.

# %%
image = reference.sample_image(224)  # (height, width, channels), values in [0, 1]
patch_size = 16
patch_grid(image, patch_size)
plt.show()
patches = reference.image_to_patches(image, patch_size)
print("image", tuple(image.shape), "→ patches", tuple(patches.shape))  # (196, 768)

# %% [markdown]
# A learned linear map then turns each patch into a vector of the model's width
# `d_model`, exactly like a word embedding does for a token id. From there on a
# transformer cannot tell whether its tokens came from text or from pixels (the map
# below is untrained, so only the shapes matter).

# %%
d_model = 64
patch_embedding = nn.Linear(patch_size * patch_size * 3, d_model)
with torch.no_grad():
    image_tokens = patch_embedding(patches)
print("image tokens:", tuple(image_tokens.shape))  # (num_patches, d_model)

# %% [markdown]
# ## 7. A first attention (25 min)
#
# A word's meaning depends on its neighbours: *bank* next to *river* is not *bank* next to
# *loan*. Attention lets a word, the **query**, look at other words, the **keys**, and
# decide how much of each to take in. The recipe has three steps:
#
# 1. score each key by its dot product with the query, divided by $\sqrt d$ (lesson 02
#    explains the division; for now, it keeps scores from growing with the vector size);
# 2. turn the scores into **weights** that are non-negative (exactly 0 for a score of
#    −∞) and sum to 1, with a softmax;
# 3. mix the keys' vectors with those weights.
#
# The softmax of scores $s_1, \dots, s_n$ is $e^{s_i} / \sum_j e^{s_j}$. Written just like
# that, it breaks for large scores:

# %%
scores = torch.tensor([1000.0, 1001.0, 999.0])
print("exp of the scores:", torch.exp(scores))
print("naive softmax:", torch.exp(scores) / torch.exp(scores).sum())

# %% [markdown]
# $e^{1000}$ is far beyond the largest float32 (about $3.4 \times 10^{38}$), so it
# becomes `inf`, and `inf / inf` is NaN. The limit comes sooner than 1000: `exp` overflows
# float32 above 88.7, and float16, which GPUs often use for speed, above about 11. Scores of
# that size do occur in trained models, and a NaN then spreads through everything.
#
# The fix costs one line. Subtracting the same number $c$ from every score does not change
# the softmax (the factor $e^{-c}$ cancels between top and bottom). Choose $c = \max_j s_j$:
# the largest exponent becomes $e^0 = 1$, and nothing can overflow.
#
# ### Exercise 1.3: a numerically stable softmax (5 min)
#
# Write `softmax(x, dim=-1)`: for a tensor `x` of any shape, return a tensor of the same
# shape whose slices along `dim` are non-negative (exactly 0 for a score of −∞) and sum
# to 1, subtracting each slice's own maximum first. Mind the shapes: a maximum taken
# along `dim` must still broadcast against `x` (reductions take a `keepdim` argument).
# And `x.max(dim=...)` returns a pair `(values, indices)`: take its `.values`. (Yes,
# `torch.softmax` exists and is stable; the point is to see how.)


# %% tags=["exercise"]
def softmax(x, dim=-1):
    """Return the softmax of x along dim, without overflow for large values."""
    ### BEGIN SOLUTION
    shifted = x - x.max(dim=dim, keepdim=True).values
    exps = torch.exp(shifted)
    return exps / exps.sum(dim=dim, keepdim=True)
    ### END SOLUTION


# %% tags=["check"]
check("1.3", softmax)

# %% [markdown]
# ### Exercise 1.4: attention weights of a query over keys (10 min)
#
# Write `attention_weights(query, keys)`:
#
# - `query` has shape `(d,)` (one query) or `(seq_q, d)` (several);
# - `keys` has shape `(seq_k, d)`, one key per row;
# - return the weights $\operatorname{softmax}(q \cdot k / \sqrt d)$ over the keys, of shape
#   `(seq_k,)` or `(seq_q, seq_k)`.
#
# One line of code should serve both shapes of `query`: find a matrix product that
# scores every query against every key, and decide which axis the softmax must run over
# so that each query's weights sum to 1. Use your `softmax`.


# %% tags=["exercise"]
def attention_weights(query, keys):
    """Return softmax(query @ keys.T / sqrt(d)) over the keys."""
    ### BEGIN SOLUTION
    d = keys.size(-1)
    scores = query @ keys.T / math.sqrt(d)  # (seq_k,) or (seq_q, seq_k)
    return softmax(scores, dim=-1)
    ### END SOLUTION


# %% tags=["check"]
check("1.4", attention_weights)

# %% [markdown]
# Now with real words. Each word's Word2Vec vector serves as its query, its key and its
# value (a real transformer learns three separate maps for these, as lesson 02 shows).
# The query *bank* looks at a few key words; the output is the weighted average of the
# keys' vectors, and its nearest words show what *bank* picked up from them:

# %%
contexts = [
    reference.known_words(["water", "shore", "boat", "money"], vectors),
    reference.known_words(["money", "loan", "cash", "credit"], vectors),
    reference.known_words(["money", "loan", "credit", "river"], vectors),
]
for keys in contexts:
    result = reference.word_attention(vectors, "bank", keys)
    weights = ", ".join(f"{k} {w:.2f}" for k, w in zip(keys, result.weights.tolist(), strict=True))
    nearest = ", ".join(w for w, _ in result.output_neighbours)
    print(f"bank → {weights}\n       output is near: {nearest}")

# %% [markdown]
# Among water words, the output of *bank* lands near boats and water; among money words,
# near loans and credit. That is the whole idea of attention in miniature: the same word
# ends up with a different vector in a different context. The third line shows the
# limits of raw Word2Vec vectors: put *river* among the money words and it takes almost
# all the weight, because in Brown the vector of *bank* happens to lie much closer to
# *river* than to *money* (their cosine similarities were printed in section 4). Learned
# query and key maps, in lesson 02, let a model decide what should match what.
#
# **Try it yourself.** Type a query word and some key words (separated by spaces) and
# press Enter, or pick an example. (Controls need a running notebook; a read-only view of
# the solution shows a static table of the first example instead.) Words must occur at
# least 5 times in Brown. Things to try: a key that repeats the query (then *bank* with
# the keys *bank river*); a key list of unrelated words; the same keys with different
# queries.

# %%
AttentionExplorer(vectors, query="bank", keys=" ".join(contexts[0]))

# %% [markdown] tags=["solution"]
# **What to notice.** A key identical to the query often wins, since its score is the
# query's squared length. But not always: a longer key pointing in a similar direction
# can score higher still, which is what the keys *bank river* test. With unrelated keys
# the weights are flatter, since no score stands out. Both are reasons why real
# transformers compare queries and keys through separate learned maps: "what I look for"
# and "what I offer" need not be the same vector.

# %% [markdown]
# ## 8. Transformers and recurrent networks (5 min)
#
# Before transformers, text was mostly read by **recurrent networks** (RNNs, LSTMs): one
# token at a time, each step updating a fixed-size memory from the previous step. Step
# 100 cannot start before step 99, so training cannot run in parallel along the text, and
# what word 1 said reaches word 100 only after passing through 99 updates. Attention
# scores every pair of tokens directly, all pairs at once, as matrix products that a GPU
# (or a vectorised CPU) computes in parallel. The price, measured in lesson 02, is that
# the number of pairs grows with the square of the length.

# %% [markdown]
# ## Summary
#
# - Text becomes tokens (words or subwords), tokens become ids in a vocabulary, and ids
#   become dense learned vectors; one-hot vectors are the huge, all-equal alternative.
# - Word2Vec learns such vectors from which words appear near which; cosine similarity
#   compares their directions, and nearest neighbours show what a vector has learned.
# - Images become tokens too: patches, flattened and mapped linearly to `d_model`.
# - A softmax must subtract the maximum to survive large scores.
# - Attention weights are $\operatorname{softmax}(q \cdot k / \sqrt d)$ over the keys; the
#   output is the weighted average, so a word's vector can depend on its context.
#
# Lesson 02 gives queries, keys and values their own learned maps and computes attention
# for whole sentences at once.
#
# **Reference run.** The solution notebook was built on a 2-core CPU shared with other
# jobs, with the Brown corpus from a local `NLTK_DATA` folder: the whole notebook took
# 38 s, Word2Vec 31 s of it (an earlier build, on a much busier machine, took 167 s and
# 121 s). It printed these five nearest neighbours:
#
# | word | nearest neighbours (cosine similarity) |
# |---|---|
# | bank | capitol (0.77), representatives (0.74), mississippi (0.70), maryland (0.70), san (0.70) |
# | money | pay (0.60), job (0.58), paid (0.55), taxes (0.54), benefit (0.52) |
# | king | richard (0.76), henry (0.72), thomas (0.72), judge (0.71), mary (0.71) |
# | river | hills (0.86), valley (0.82), bay (0.78), lake (0.77), border (0.77) |

# %%
print(f"This notebook ran in {time.perf_counter() - started:.0f} s.")

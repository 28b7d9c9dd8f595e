# %% [markdown]
# # Lesson 08 · A decoder that writes
#
# **Goal:** turn your encoder blocks into a small GPT-style language model, train it to predict the next word of the Brown corpus, and make it write: greedy decoding, temperature and top-k sampling, and the key-value cache that makes generation fast.
#
# **Time:** about 90 minutes, three of them waiting for training.
#
# **What carries over.** The model of this bonus lesson is built from *your* code: the
# attention of lesson 02, the multi-head attention of lesson 03, the layer norm,
# feed-forward network and encoder block of lesson 04, and the positional table of lesson
# 05. Each part whose check passed was recorded; a part you skipped is replaced by the
# course's reference, and the notebook prints which is which before it trains.
#
# Lessons 06 and 07 used the encoder to *read*. Most people meet transformers today as
# models that *write*, one word after another. This lesson builds one:
#
# 1. from encoder to decoder: a causal mask is all it takes (10 min);
# 2. the next-token objective and teacher forcing; exercise 8.1 (20 min);
# 3. training on the Brown corpus, against a unigram baseline (10 min, 3 of them waiting);
# 4. writing one token at a time: greedy, temperature, top-k; exercise 8.2 (25 min);
# 5. why generation is slow, and the key-value cache; exercise 8.3 (20 min);
# 6. encoder, decoder, or both: the three families (5 min).

# %%
import functools
import math
import statistics

import torch
import torch.nn.functional as F

from course_utils import decoder as reference  # the course's own solutions, used by demos
from course_utils import get_device, parts, set_seed
from course_utils.decoder import DecoderLM, generate, time_per_token
from course_utils.decoder_training import decoder_config, trained_decoder
from course_utils.encoder import DecoderBlock
from course_utils.exercises import check
from course_utils.plots import line_chart
from course_utils.settings import sized

device = get_device()
set_seed(0)

# %% [markdown]
# ## 1. From encoder to decoder (10 min)
#
# An encoder block lets every token look at every other token. A **decoder-only** model
# (GPT, Llama, and the one you are about to train) uses exactly the same block with one
# change: the **causal mask** of lesson 02, so that position $t$ sees positions
# $0, \dots, t$ and never the words after it. Around the stack of blocks:
#
# ```
# token ids ─► embedding × √d_model + positions ─► block ─► block ─► LayerNorm ─► linear head ─► logits
#  (batch, seq)           (batch, seq, d_model)       (causal mask in every block)          (batch, seq, vocab_size)
# ```
#
# The head turns each position's vector into a score for every word of the vocabulary:
# the **logits** for the word that comes *next*. `DecoderLM` assembles this from
# `parts.encoder_block(..., norm_first=True)`, the pre-norm block most decoders use, and
# `parts.positional_encoding`. These are your parts where you passed their checks:

# %%
parts.show()

# %% [markdown]
# Does the mask really hide the future? Build a tiny model, change the last three tokens
# of a sequence, and compare the logits at the earlier positions:

# %% tags=["nbval-check-output"]
tiny = DecoderLM(vocab_size=50, d_model=32, num_heads=4, num_layers=2, d_ff=64, max_len=16)
tiny.eval()
ids = torch.randint(4, 50, (1, 10), generator=torch.Generator().manual_seed(0))
changed = ids.clone()
changed[0, 7:] = torch.tensor([4, 5, 6])  # new words at positions 7, 8, 9
with torch.no_grad():
    before, after = tiny(ids), tiny(changed)  # (1, 10, 50) each
print("logits:", tuple(before.shape))
print("positions 0-6 unchanged:", torch.allclose(before[0, :7], after[0, :7], atol=1e-6))
print("positions 7-9 changed:  ", not torch.allclose(before[0, 7:], after[0, 7:]))

# %% [markdown]
# ## 2. The next-token objective (20 min)
#
# A language model is trained on plain text, with no labels: the text is its own label.
# At every position the target is simply the **next** token. So the inputs and the
# targets are the same sequence, shifted by one:

# %%
tokens = ["<s>", "the", "jury", "said", "it", "did", "</s>"]
print("inputs: ", tokens[:-1])  # what the model reads at positions 0 .. 5
print("targets:", tokens[1:])  # what it must predict there: the token one step ahead

# %% [markdown]
# `<s>` marks the start of a sentence (it gives the model something to predict the first
# word from) and `</s>` its end (so the model learns when to stop). The loss is the
# cross-entropy between the logits at position $t$ and token $t + 1$, averaged over every
# position of every sentence in the batch:
#
# $$\mathcal{L} = -\frac{1}{N} \sum_{\text{sentences}} \sum_{t} \log P(w_{t+1} \mid w_0, \dots, w_t),$$
#
# where $N$ counts the real targets. Sentences in a batch have different lengths and are
# padded with `<pad>` (id 0) at the end; a padding target is not a word to predict, so it
# must not count.
#
# **Teacher forcing.** During training the model always reads the *true* previous words,
# never its own guesses. Thanks to the causal mask, position $t$'s output depends only on
# tokens $0..t$, so **one forward pass** over a whole sentence gives a prediction for
# every position at once, each made as if the rest of the sentence did not exist yet. A
# batch of 32 sentences of about 22 tokens trains on some 650 next-word predictions in
# one go. This is the transformer's advantage over a recurrent network, which must walk
# through the sentence one token after another even in training.
#
# ### Exercise 8.1: the next-token loss (10 min)
#
# Write `next_token_loss(logits, token_ids, pad_id)`.
#
# - `logits`: `(batch, seq, vocab_size)`, the model's output for `token_ids`
#   `(batch, seq)`.
# - Pair the logits at positions `0 .. seq - 2` with the tokens at positions `1 .. seq - 1`.
#   The last position has nothing to predict.
# - Skip the targets equal to `pad_id`, and return the mean over all remaining targets of
#   the batch: a 0-dim tensor.
# - `F.cross_entropy(input, target, ignore_index=...)` wants `input` of shape
#   `(N, vocab_size)` and `target` of shape `(N,)`: shift first, then `reshape`.


# %% tags=["exercise"]
def next_token_loss(logits, token_ids, pad_id):
    """Return the mean cross-entropy of predicting token t + 1 at position t (0-dim)."""
    ### BEGIN SOLUTION
    vocab_size = logits.size(-1)
    predictions = logits[:, :-1].reshape(-1, vocab_size)  # positions 0 .. seq - 2
    targets = token_ids[:, 1:].reshape(-1)  # tokens 1 .. seq - 1
    return F.cross_entropy(predictions, targets, ignore_index=pad_id)
    ### END SOLUTION


# %% tags=["check"]
check("8.1", next_token_loss)

# %% [markdown]
# Before any training, what loss should we expect? A model that knows nothing spreads its
# probability evenly over the vocabulary, and pays $\log(\text{vocab\_size})$ nats per
# word. The tiny model above, with 50 words, is close to that:

# %%
with torch.no_grad():
    untrained = reference.next_token_loss(tiny(ids), ids, pad_id=0)
print(f"untrained loss {untrained.item():.2f}, log(50) = {math.log(50):.2f}")

# %% [markdown]
# ## 3. Training on the Brown corpus (10 min, 3 of them waiting)
#
# The data is lesson 01's Brown corpus: 57,340 sentences of American English from 1961.
# Words are the tokens, lowercased, punctuation included. The vocabulary keeps the most
# frequent words; every other word becomes `<unk>`. A small subword vocabulary would
# avoid unknown words, but a word-level model is faster to train and its mistakes are
# easier to read. 2,000 sentences are held out to measure the model.
#
# **The baseline to beat** is the *unigram* model: it predicts every next word from the
# words' overall frequencies, ignoring the context. Everything our model gains over it
# comes from reading the words before. To spend the short training on context rather
# than on counting words, the model starts out almost exactly as the unigram model: its
# head's bias is set to the log of each word's frequency, and its weights start small.
#
# Training runs for a fixed time (2.5 minutes on a CPU), whatever the machine: a faster
# computer simply takes more steps in it. The learning rate warms up, then decays to
# zero exactly when the time runs out. The trained model is saved in the course cache,
# so running this cell again loads it.

# %%
config = decoder_config()
print(
    f"vocabulary {config.vocab_size:,} words, d_model {config.d_model}, "
    f"{config.num_layers} blocks of {config.num_heads} heads, sentences up to "
    f"{config.max_len} tokens, {config.seconds:.0f} s of training"
)
trained = trained_decoder(config, device)
model, vocab, record = trained.model, trained.vocab, trained.record
print(f"{sum(p.numel() for p in model.parameters()):,} parameters")

# %% [markdown]
# The loss as training went on, measured on 200 of the held-out sentences:

# %%
ax = line_chart(
    record["steps"],
    {
        "training batches": record["train_loss"],
        "held-out sentences": record["held_out_loss"],
        "unigram baseline": [record["unigram_loss"]] * len(record["steps"]),
    },
    xlabel="training step",
    ylabel="next-word loss (nats)",
    title=f"{record['total_steps']} steps in {record['seconds']:.0f} s",
)

# %%
# the final losses, on all the held-out sentences
model_loss, unigram_loss = record["held_out_loss_final"], record["unigram_loss"]
print(f"held-out loss: model {model_loss:.2f}, unigram {unigram_loss:.2f}")
print(f"perplexity:    model {math.exp(model_loss):.0f}, unigram {math.exp(unigram_loss):.0f}")

# %% tags=["nbval-check-output"]
print("the model beats the unigram baseline:", model_loss < unigram_loss)

# %% [markdown]
# **Perplexity** is $e^{\text{loss}}$: the model is as unsure of the next word as if it
# had to pick uniformly among that many words. The unigram model picks among a few
# hundred; the trained model among clearly fewer, using only the words before.
#
# Both perplexities are lower than they would be over real words: the 5,000-word
# vocabulary covers about 88% of Brown's words, and the rest all become one token,
# `<unk>`, an easy guess. Published perplexities count every word, so they do not
# compare with these; the model and the unigram baseline, scored on the same targets, do.

# %% [markdown]
# ## 4. Writing, one token at a time (25 min)
#
# To generate, start from `<s>` (and any words you like), run the model, pick one token
# from the logits at the **last** position, append it, and run again. Each new token
# needs the one before it, so generation is inherently **sequential**: $n$ new tokens
# take $n$ forward passes, where training handled a whole sentence in one.
#
# The simplest way to pick is **greedy decoding**: always the likeliest token.

# %%
prompt = vocab.encode("the jury said", end=False)  # <s> the jury said
# generate with this model, stopping at </s>, and never writing <unk>
write = functools.partial(generate, model, stop_id=vocab.end_id, banned_ids=[vocab.unk_id])
greedy = write(prompt, 25, temperature=0)
print("the jury said", vocab.decode(greedy))

# %% [markdown]
# Greedy text is safe and dull: it always takes the commonest way on, and over longer
# texts it often repeats itself, because the likeliest continuation of a common phrase
# is another common phrase. **Sampling** draws the next
# token at random from the model's probabilities instead, and two knobs shape them:
#
# - **temperature** $T$: divide the logits by $T$ before the softmax. $T < 1$ sharpens
#   the distribution towards the likeliest words (at $T \to 0$, greedy), $T > 1$ flattens
#   it towards uniform;
# - **top-k**: keep only the $k$ likeliest tokens, set the other logits to $-\infty$,
#   and renormalise. This cuts the long tail of rare words, each unlikely but together
#   likely enough to derail a sentence.
#
# Here is the model's next-word distribution after *"the jury said"*, at three
# temperatures (the 25 likeliest words, in order; dividing by a positive temperature
# never changes the order). `<unk>` is left out, as in every generation of this lesson:

# %%
with torch.no_grad():
    logits = model(torch.tensor([prompt], device=device))[0, -1].cpu()  # (vocab_size,)
logits[vocab.unk_id] = float("-inf")  # banned, as in write(): probability 0
order = logits.argsort(descending=True)[:25]
curves = {f"T = {t}": torch.softmax(logits / t, dim=-1)[order] for t in (0.5, 1.0, 2.0)}
ax = line_chart(
    range(1, 26),
    curves,
    xlabel="the 25 likeliest next words (at every temperature)",
    ylabel="probability of being next",
    title='next word after "the jury said"',
)
ax.set_xticks(range(1, 26), [vocab.words[i] for i in order.tolist()], rotation=70)
ax.figure.tight_layout()  # room for the rotated words

# %% [markdown]
# ### Exercise 8.2: one sampling step (15 min)
#
# Write `sample_next_token(logits, temperature, top_k, generator)`.
#
# - `logits`: `(batch, vocab_size)`; returns one token id per row, a `torch.long` tensor
#   of shape `(batch,)`.
# - Divide the logits by `temperature` (a positive float).
# - If `top_k` is not `None`, set every logit below the `top_k`-th largest of its row to
#   `float("-inf")` (`torch.topk(x, k, dim=-1).values[:, -1:]` is the threshold).
# - Softmax over the vocabulary, then draw with
#   `torch.multinomial(probabilities, 1, generator=generator)`: pass the generator, so
#   the same generator state always gives the same tokens. `multinomial` returns
#   `(batch, 1)`.
#
# The check draws 20,000 tokens per test case and compares how often each comes up with
# the exact probabilities.


# %% tags=["exercise"]
def sample_next_token(logits, temperature, top_k, generator):
    """Return one sampled token id per row of logits (batch, vocab_size): shape (batch,)."""
    ### BEGIN SOLUTION
    scaled = logits / temperature
    if top_k is not None:
        threshold = torch.topk(scaled, top_k, dim=-1).values[:, -1:]  # (batch, 1)
        scaled = scaled.masked_fill(scaled < threshold, float("-inf"))
    probabilities = torch.softmax(scaled, dim=-1)
    return torch.multinomial(probabilities, 1, generator=generator).squeeze(-1)
    ### END SOLUTION


# %% tags=["check"]
check("8.2", sample_next_token)

# %% [markdown]
# Now the model writes, with your sampler once its check has passed (the course's until
# then). The unigram model writes below it, for comparison: it draws every word from the
# word frequencies alone.

# %%
my_sampler = parts.yours_or_reference("8.2", sample_next_token)
write = functools.partial(write, sampler=my_sampler)  # every generation from here on
generator = torch.Generator().manual_seed(1)
start = [vocab.start_id]
for temperature, top_k in [(1.0, None), (0.8, 40), (0.6, 20)]:
    print(f"model, T = {temperature}, top-k = {top_k}:")
    for _ in range(3):
        new = write(start, 30, temperature=temperature, top_k=top_k, generator=generator)
        print("   ", vocab.decode(new))
print("unigram model:")
for _ in range(3):
    words = trained.unigram.sample(30, generator, stop_id=vocab.end_id, banned=[vocab.unk_id])
    print("   ", vocab.decode(words))

# %% [markdown]
# **Question.** Read the model's lines against the unigram lines. What does the model get
# right that word frequencies alone cannot? Where does it break down, and how do the
# three settings differ?

# %% [markdown] tags=["solution"]
# **What to look for.** The unigram lines are frequent words in no order: any word may
# follow any other, and a line ends only when `</s>` happens to be drawn. The model's
# lines have local grammar: a determiner before a noun, a verb after a subject, commas
# and full stops in plausible places. They drift in meaning after a few words: two
# blocks trained for two and a half minutes on a million words learn short-range
# patterns, not ideas. A higher temperature gives more varied and more broken text; a
# lower one (or a small top-k) safer and more repetitive text.

# %% [markdown]
# **Your turn.** Type the start of a sentence and see how the model carries on. Words it
# does not know become `<unk>`; try a few settings of the two knobs.

# %%
PROMPT = "the president of the united states"
TEMPERATURE, TOP_K = 0.8, 40

typed = vocab.encode(PROMPT, end=False)
generator = torch.Generator().manual_seed(0)
for _ in range(3):
    new = write(typed, 30, temperature=TEMPERATURE, top_k=TOP_K, generator=generator)
    print(vocab.decode(typed), "|", vocab.decode(new))  # nothing after "|": it ended at once

# %% [markdown]
# ## 5. Why generation is slow, and the key-value cache (20 min)
#
# Generating token $t + 1$ runs the model over all $t$ tokens so far, although the
# vectors of the first $t - 1$ were already computed for the previous token and, thanks
# to the causal mask, cannot have changed: a position never sees what came after it. In
# attention, what a new token needs from the earlier positions is only their **keys and
# values**, in every block and head.
#
# So keep them. A **key-value cache** stores each block's keys and values, shape
# `(batch, num_heads, seq, d_head)`. For each new token the model computes the query,
# key and value of that one token only, appends its key and value to the cache, and
# attends from its query over the whole cache. The new token is the last position, so
# it may see every key: no mask is needed. The result is exactly the last row of full
# causal attention, at the cost of one position instead of all of them.
#
# One detail lives outside attention: the new token's **position**. With `seq_past`
# tokens in the cache, it is position `seq_past` (counting from 0), so it must get that
# row of the positional table, not row 0 as if it were alone. The model's `step` method
# reads it off the cache's length.
#
# ### Exercise 8.3: attention with a key-value cache (10 min)
#
# Write `attend_with_cache(query, key, value, key_cache, value_cache)`.
#
# - `query`, `key`, `value`: the new token's, each `(batch, num_heads, 1, d_head)`.
# - `key_cache`, `value_cache`: every earlier position's, `(batch, num_heads, seq_past,
#   d_head)`; `seq_past` may be 0 (the first token).
# - Append the new key and value along the sequence axis (`torch.cat(..., dim=-2)`), then
#   compute scaled dot-product attention of the query over all `seq_past + 1` keys.
# - Return `(output, key_cache, value_cache)`: output `(batch, num_heads, 1, d_head)`
#   and the two grown caches.


# %% tags=["exercise"]
def attend_with_cache(query, key, value, key_cache, value_cache):
    """Return (output, key_cache, value_cache): one new token attending over the cache."""
    ### BEGIN SOLUTION
    key_cache = torch.cat([key_cache, key], dim=-2)  # (batch, num_heads, seq_past + 1, d_head)
    value_cache = torch.cat([value_cache, value], dim=-2)
    scores = query @ key_cache.transpose(-2, -1) / math.sqrt(query.size(-1))  # (..., 1, seq)
    weights = torch.softmax(scores, dim=-1)
    return weights @ value_cache, key_cache, value_cache
    ### END SOLUTION


# %% tags=["check"]
check("8.3", attend_with_cache)

# %% [markdown]
# The model's `step` method runs one new token through every block this way, with your
# `attend_with_cache` once its check has passed. Fed a sentence one token at a time, it
# gives the same logits as one full forward pass:

# %% tags=["nbval-check-output"]
my_attend = parts.yours_or_reference("8.3", attend_with_cache)
sentence = torch.tensor([vocab.encode("the jury said it did not know .")], device=device)
with torch.no_grad():
    full = model(sentence)[0]  # (seq, vocab_size): every position in one pass
    cache, gaps = None, []
    for position in range(sentence.size(1)):
        logits, cache = model.step(sentence[:, position], cache, my_attend)  # (1, vocab_size)
        gaps.append((logits[0] - full[position]).abs().max().item())
print("same logits as the full pass at every position:", max(gaps) < 1e-4)

# %%
print("the first block's cached keys:", tuple(cache[0][0].shape), "(batch, num_heads, seq, d_head)")

# %% [markdown]
# **How much time does it save?** We time each generated token with and without the
# cache, five times over, and keep each token's fastest time (on a busy computer other
# work can only slow a step down). The trained model has only 48 positions, too few to
# show the effect, so the timing uses a model of the same size with random weights and
# 385 positions: the speed does not depend on what the weights are. Both ways run your
# blocks' projections and feed-forward networks; without the cache they attend through
# your multi-head attention, with it through your `attend_with_cache`. (Under a minute.)

# %%
timing_model = DecoderLM(
    len(vocab),
    config.d_model,
    config.num_heads,
    config.num_layers,
    config.d_ff,
    max_len=sized(385, 49),
).to(device)
num_tokens = timing_model.max_len - 1
measured = {
    label: time_per_token(timing_model, num_tokens, use_cache=cached, repeats=5, attend=my_attend)
    for label, cached in [("without the cache", False), ("with the cache", True)]
}
window = sized(16, 4)  # average over windows: single timings are noisy
lengths = list(range(window, num_tokens + 1, window))
milliseconds = {
    label: [1000 * sum(times[n - window : n]) / window for n in lengths]
    for label, times in measured.items()
}
ax = line_chart(
    lengths,
    milliseconds,
    xlabel="tokens so far (sequence length)",
    ylabel="milliseconds per new token",
    title="generating one token, with and without the key-value cache",
)
last_quarter = slice(-max(1, len(lengths) // 4), None)  # the median is robust to a slow window
slow = statistics.median(milliseconds["without the cache"][last_quarter])
fast = statistics.median(milliseconds["with the cache"][last_quarter])
print(
    f"from {lengths[last_quarter][0]} to {lengths[-1]} tokens (median): {slow:.1f} ms per "
    f"token without the cache, {fast:.1f} ms with it, {slow / fast:.1f}× faster"
)
total = {label: sum(times) for label, times in measured.items()}
print(
    f"all {num_tokens} tokens: {total['without the cache']:.1f} s without, "
    f"{total['with the cache']:.1f} s with the cache (fastest of 5 runs, per token)"
)

# %% [markdown]
# Without the cache, each new token costs a forward pass over the whole prefix, so the
# time per token grows with the length (and the whole generation with its square). With
# the cache, a token costs one position's projections and feed-forward network, plus one
# row of attention over the cache: nearly flat at these lengths. The price is memory:
# for every block, two tensors of `seq × d_model` numbers per sequence. For a large model
# with long prompts that is gigabytes, which is why serving systems work so hard on it.

# %% [markdown]
# ## 6. Encoder, decoder, or both (5 min)
#
# The original transformer was an **encoder-decoder** for translation. The encoder reads
# the whole source sentence (no mask, as in lessons 06 and 07); the decoder writes the
# target one token at a time, as in this lesson, with one more sublayer in each block:
# **cross-attention** (lesson 03), whose queries come from the target written so far and
# whose keys and values come from the encoder's output, the *memory*. Lesson 04's
# `DecoderBlock` has all three sublayers:

# %% tags=["nbval-check-output"]
block = DecoderBlock(d_model=32, num_heads=4, d_ff=64).eval()
memory = torch.randn(1, 9, 32)  # the encoder's output for a 9-token source sentence
target = torch.randn(1, 5, 32)  # the 5 target tokens written so far
with torch.no_grad():
    _, cross_weights = block.cross_attn(target, memory)  # queries: target; keys, values: memory
    print("decoder block output:", tuple(block(target, memory).shape))
print("cross-attention weights:", tuple(cross_weights.shape), "(batch, heads, target, source)")

# %% [markdown]
# Each of the 5 target positions spreads its attention over all 9 source positions: the
# target may look at the whole source, but only at its own past. At generation time the
# encoder runs once, and its keys and values for cross-attention can be cached once too.
#
# | family | reads | trained to | used for | examples |
# |---|---|---|---|---|
# | encoder-only | the whole text, both directions | classify, or fill masked words | classification, search, tagging | BERT (lesson 07), lesson 06's classifier |
# | decoder-only | the text so far (causal mask) | predict the next token | chat, writing, code | GPT, Llama, this lesson's model |
# | encoder-decoder | the source in full, the target so far | predict the next target token | translation, summarisation, speech to text | the original transformer, T5, Whisper |
#
# Decoder-only models now do much of what the other two were built for, because any task can
# be written as text to continue ("Translate to French: ..."). Encoders remain the
# cheaper choice when the job is to understand a text rather than to write one.

# %% [markdown]
# ## Summary
#
# - A decoder-only language model is a stack of encoder blocks with a causal mask, a
#   final LayerNorm and a linear head over the vocabulary.
# - Its loss is the cross-entropy of token $t + 1$ at position $t$: shift by one, skip
#   padding targets, average over the real ones. Teacher forcing trains every position
#   of a sentence in one forward pass.
# - Generation is sequential: one forward pass per new token. Greedy decoding takes the
#   likeliest token; sampling divides the logits by a temperature, keeps the top $k$,
#   and draws from the softmax.
# - A key-value cache keeps each block's keys and values, so each new token costs one
#   position's work; its attention equals the last row of full causal attention.
# - Encoder-only models read, decoder-only models write, encoder-decoders read one text
#   and write another, joined by cross-attention.

# %% [markdown]
# **Measured here.** This run's figures, from the cells above:

# %%
print(
    f"training: {record['total_steps']:,} steps in {record['seconds']:.0f} s; held-out loss "
    f"{model_loss:.2f} (perplexity {math.exp(model_loss):.0f}), unigram baseline "
    f"{unigram_loss:.2f} (perplexity {math.exp(unigram_loss):.0f})"
)
print(
    f"a new token at {lengths[last_quarter][0]} to {lengths[-1]} tokens: {slow:.1f} ms without "
    f"the cache, {fast:.1f} ms with it, {slow / fast:.0f}× faster"
)

# %% [markdown]
# Training runs for a fixed time, so a faster or less busy computer takes more steps and
# gets further. Over the builds of this notebook on a 2-core CPU without a GPU, at
# different loads, the same 150 seconds bought 405 to 2,241 steps and held-out losses from
# 4.82 down to 4.44. The cache made a token at the longest lengths 4 to 10 times faster in
# every build.

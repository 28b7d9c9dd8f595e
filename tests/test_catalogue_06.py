"""Catalogue of learner implementations for lesson 06 (exercises 6.1-6.2)."""

from __future__ import annotations

import math

import torch
from catalogue import Catalogue, catalogue_tests
from torch import nn

from course_utils.classifier import masked_mean_pool

CATALOGUE = Catalogue()
valid, wrong = CATALOGUE.valid, CATALOGUE.wrong

# 6.1 masked mean pooling -------------------------------------------------------------------


@valid("6.1")
def pool_textbook(hidden, mask):
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


@valid("6.1")
def pool_where(hidden, mask):
    total = torch.where(mask[..., None], hidden, torch.zeros_like(hidden)).sum(1)
    return total / mask.sum(1, keepdim=True)


@valid("6.1")
def pool_loop(hidden, mask):
    return torch.stack([hidden[b][mask[b]].mean(dim=0) for b in range(hidden.size(0))])


@valid("6.1")
def pool_einsum(hidden, mask):
    m = mask.float()
    return torch.einsum("bsd,bs->bd", hidden, m) / m.sum(-1, keepdim=True)


@valid("6.1")
def pool_count_under_no_grad(hidden, mask):
    # No gradient is needed through the count: the gradient still reaches hidden.
    with torch.no_grad():
        count = mask.sum(dim=1, keepdim=True).float()
    return (hidden * mask.unsqueeze(-1)).sum(dim=1) / count


@wrong("6.1", "padding included")
def pool_plain_mean(hidden, mask):
    return hidden.mean(dim=1)


@wrong("6.1", "wrong polarity")
def pool_inverted(hidden, mask):
    keep = (~mask).unsqueeze(-1).float()
    return (hidden * keep).sum(1) / keep.sum(1)


@wrong("6.1", "divided by the padded length")
def pool_masked_mean_all(hidden, mask):
    return (hidden * mask.unsqueeze(-1)).mean(dim=1)


@wrong("6.1", "summed the real tokens")
def pool_sum(hidden, mask):
    return (hidden * mask.unsqueeze(-1)).sum(dim=1)


@wrong("6.1", "batch axis")
def pool_batch_axis(hidden, mask):
    m = mask.unsqueeze(-1).float()
    return (hidden * m).sum(0) / m.sum(0)


@wrong("6.1", "padding always came last")
def pool_first_n(hidden, mask):
    lengths = mask.sum(dim=1)
    return torch.stack([hidden[b, : lengths[b]].mean(0) for b in range(len(lengths))])


@wrong("6.1", "all reviews together")
def pool_flat(hidden, mask):
    return hidden[mask].mean(dim=0)


@wrong("6.1", "keepdim=True")
def pool_count_without_keepdim(hidden, mask):
    return (hidden * mask.unsqueeze(-1)).sum(1) / mask.sum(1)


@wrong("6.1", "maximum")
def pool_max(hidden, mask):
    return hidden.masked_fill(~mask.unsqueeze(-1), float("-inf")).max(dim=1).values


@wrong("6.1", "in place")
def pool_in_place(hidden, mask):
    hidden *= mask.unsqueeze(-1)
    return hidden.sum(1) / mask.sum(1, keepdim=True)


@wrong("6.1", "in place")
def pool_masked_fill_in_place(hidden, mask):
    hidden.masked_fill_(~mask.unsqueeze(-1), 0.0)
    return hidden.sum(1) / mask.sum(1, keepdim=True)


@wrong("6.1", "")
def pool_first_token(hidden, mask):
    return hidden[:, 0]


@wrong("6.1", "cut the gradient (detach / no_grad)")
def pool_detached(hidden, mask):
    weights = mask.unsqueeze(-1).float()
    pooled = (hidden * weights).sum(1) / weights.sum(1)
    return pooled.detach()


@wrong("6.1", "cut the gradient (detach / no_grad)")
def pool_under_no_grad(hidden, mask):
    with torch.no_grad():
        weights = mask.unsqueeze(-1).float()
        return (hidden * weights).sum(1) / weights.sum(1)


@wrong("6.1", "cut the gradient (detach / no_grad)")
def pool_of_detached_hidden(hidden, mask):
    hidden = hidden.detach()
    return (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)


@wrong("6.1", "return the same dtype as hidden (float32)")
def pool_double(hidden, mask):
    weights = mask.unsqueeze(-1).double()
    return (hidden * weights).sum(1) / weights.sum(1)


@wrong("6.1", "give it a last axis: mask.unsqueeze(-1)")
def pool_mask_not_unsqueezed(hidden, mask):
    m = mask.float()
    return (hidden * m).sum(dim=1) / m.sum(dim=1, keepdim=True)


@wrong("6.1", "give it a last axis: mask.unsqueeze(-1)")
def pool_mask_on_the_wrong_axis(hidden, mask):
    m = mask.unsqueeze(1).float()
    return (hidden * m).sum(dim=1) / mask.sum(dim=1, keepdim=True)


@wrong("6.1", "give it a last axis: mask.unsqueeze(-1)")
def pool_masked_fill_without_axis(hidden, mask):
    total = hidden.masked_fill(~mask, 0.0).sum(1)
    return total / mask.sum(1, keepdim=True)


# 6.2 the classifier's forward pass ---------------------------------------------------------


@valid("6.2")
def forward_textbook(model, input_ids):
    keep = input_ids != model.pad_id
    x = model.embedding(input_ids) * math.sqrt(model.d_model)
    x = model.dropout(model.positional(x))
    x = model.encoder(x, mask=keep[:, None, None, :])
    pooled = x[:, 0] if model.pooling == "cls" else masked_mean_pool(x, keep)
    return model.head(model.dropout(pooled))


@valid("6.2")
def forward_step_by_step(model, input_ids):
    padding = input_ids == model.pad_id
    keep = ~padding
    x = model.embedding(input_ids)
    x = x * model.d_model**0.5
    x = model.positional(x)
    x = model.dropout(x)
    x = model.encoder(x, mask=keep.unsqueeze(1).unsqueeze(2))
    if model.pooling == "cls":
        pooled = x[:, 0, :]
    else:
        pooled = (x * keep.unsqueeze(-1)).sum(1) / keep.sum(1, keepdim=True)
    pooled = model.dropout(pooled)
    return model.head(pooled)


@valid("6.2")
def forward_table_by_hand(model, input_ids):
    keep = input_ids.ne(model.pad_id)
    x = model.embedding(input_ids) * math.sqrt(model.d_model)
    x = x + model.positional.table[: input_ids.size(1)]
    x = model.encoder(model.dropout(x), mask=keep[:, None, None, :])
    pooled = x[:, 0] if model.pooling == "cls" else masked_mean_pool(x, keep)
    return model.head(model.dropout(pooled))


def _forward(model, input_ids, *, keep=None, scale=True, mask="ok", pool="ok", drop=(1, 1)):
    keep = input_ids != model.pad_id if keep is None else keep
    x = model.embedding(input_ids) * (math.sqrt(model.d_model) if scale else 1.0)
    x = model.positional(x)
    if drop[0]:
        x = model.dropout(x)
    masks = {"ok": keep[:, None, None, :], "none": None, "inverted": ~keep[:, None, None, :]}
    x = model.encoder(x, mask=masks[mask] if mask in masks else mask)
    if pool == "mean":
        pooled = x.mean(1)
    elif model.pooling == "cls" and pool == "ok":
        pooled = x[:, 0]
    else:
        pooled = masked_mean_pool(x, keep)
    return model.head(model.dropout(pooled) if drop[1] else pooled)


@wrong("6.2", "math.sqrt(model.d_model)")
def forward_unscaled(model, input_ids):
    return _forward(model, input_ids, scale=False)


@wrong("6.2", "embeddings alone")
def forward_scaled_after(model, input_ids):
    keep = input_ids != model.pad_id
    x = model.positional(model.embedding(input_ids)) * math.sqrt(model.d_model)
    x = model.encoder(model.dropout(x), mask=keep[:, None, None, :])
    pooled = x[:, 0] if model.pooling == "cls" else masked_mean_pool(x, keep)
    return model.head(model.dropout(pooled))


@wrong("6.2", "along the batch axis")
def forward_batch_positions(model, input_ids):
    keep = input_ids != model.pad_id
    x = model.embedding(input_ids) * math.sqrt(model.d_model)
    x = x + model.positional.table[: x.size(0)].unsqueeze(1)
    x = model.encoder(model.dropout(x), mask=keep[:, None, None, :])
    pooled = x[:, 0] if model.pooling == "cls" else masked_mean_pool(x, keep)
    return model.head(model.dropout(pooled))


@wrong("6.2", "attend to padding")
def forward_no_mask(model, input_ids):
    return _forward(model, input_ids, mask="none")


@wrong("6.2", "wrong polarity")
def forward_inverted_mask(model, input_ids):
    return _forward(model, input_ids, mask="inverted")


@wrong("6.2", "averaged over the padding")
def forward_plain_mean(model, input_ids):
    return _forward(model, input_ids, pool="mean")


@wrong("6.2", "x[:, 0]")
def forward_cls_ignored(model, input_ids):
    return _forward(model, input_ids, pool="always mean")


@wrong("6.2", "apply model.dropout twice")
def forward_no_dropout(model, input_ids):
    return _forward(model, input_ids, drop=(0, 0))


@wrong("6.2", "before model.head")
def forward_one_dropout(model, input_ids):
    return _forward(model, input_ids, drop=(1, 0))


@wrong("6.2", "not only before the head")
def forward_other_dropout(model, input_ids):
    return _forward(model, input_ids, drop=(0, 1))


@wrong("6.2", "need not be 0")
def forward_pad_zero(model, input_ids):
    return _forward(model, input_ids, keep=input_ids != 0)


@wrong("6.2", "keep[:, None, None, :]")
def forward_2d_mask(model, input_ids):
    keep = input_ids != model.pad_id
    return _forward(model, input_ids, mask=keep)


@wrong("6.2", "course's own forward pass")
def forward_calls_model(model, input_ids):
    return model(input_ids)


@wrong("6.2", "out of training mode")
def forward_eval_inside(model, input_ids):
    model.eval()
    return forward_textbook(model, input_ids)


@wrong("6.2", "")
def forward_no_positions(model, input_ids):
    keep = input_ids != model.pad_id
    x = model.dropout(model.embedding(input_ids) * math.sqrt(model.d_model))
    x = model.encoder(x, mask=keep[:, None, None, :])
    pooled = x[:, 0] if model.pooling == "cls" else masked_mean_pool(x, keep)
    return model.head(model.dropout(pooled))


@wrong("6.2", "in place")
def forward_scales_embedding_table(model, input_ids):
    with torch.no_grad():
        model.embedding.weight.mul_(math.sqrt(model.d_model))
    keep = input_ids != model.pad_id
    x = model.dropout(model.positional(model.embedding(input_ids)))
    x = model.encoder(x, mask=keep[:, None, None, :])
    pooled = x[:, 0] if model.pooling == "cls" else masked_mean_pool(x, keep)
    return model.head(model.dropout(pooled))


@wrong("6.2", "nn.CrossEntropyLoss applies the softmax itself")
def forward_softmax(model, input_ids):
    return torch.softmax(forward_textbook(model, input_ids), dim=-1)


@wrong("6.2", "nn.CrossEntropyLoss applies the softmax itself")
def forward_log_probabilities(model, input_ids):
    return nn.functional.log_softmax(forward_textbook(model, input_ids), dim=1)


@wrong("6.2", "use masked_mean_pool, not x[:, 0]")
def forward_first_token_always(model, input_ids):
    keep = input_ids != model.pad_id
    x = model.embedding(input_ids) * math.sqrt(model.d_model)
    x = model.dropout(model.positional(x))
    x = model.encoder(x, mask=keep[:, None, None, :])
    return model.head(model.dropout(x[:, 0, :]))


@wrong("6.2", "your mask hides queries")
def forward_mask_on_queries(model, input_ids):
    keep = input_ids != model.pad_id
    return _forward(model, input_ids, mask=keep.unsqueeze(1).unsqueeze(-1))


@wrong("6.2", "call model.encoder(...), which also applies the final layer norm")
def forward_loops_over_layers(model, input_ids):
    keep = input_ids != model.pad_id
    x = model.embedding(input_ids) * math.sqrt(model.d_model)
    x = model.dropout(model.positional(x))
    for block in model.encoder.layers:
        x = block(x, mask=keep[:, None, None, :])
    pooled = x[:, 0] if model.pooling == "cls" else masked_mean_pool(x, keep)
    return model.head(model.dropout(pooled))


MINIMUM = {"6.1": (12, 4), "6.2": (15, 3)}
(
    test_valid_is_accepted,
    test_wrong_is_rejected_with_its_mistake_named,
    test_catalogue_covers_each_exercise,
) = catalogue_tests(CATALOGUE, MINIMUM)

import pytest
import torch

from segface.attention import Attention


@pytest.mark.parametrize("num_keys", [19, 300])  # explicit path (few keys) and fused kernel
def test_attention_paths_equal_the_textbook_formula(num_keys):
    torch.manual_seed(0)
    attn = Attention(dim=32, num_heads=4, downsample_rate=2).eval()
    q, kv = torch.randn(2, 70, 32), torch.randn(2, num_keys, 32)
    qh = attn.q_proj(q).reshape(2, 70, 4, 4).transpose(1, 2)
    kh = attn.k_proj(kv).reshape(2, num_keys, 4, 4).transpose(1, 2)
    vh = attn.v_proj(kv).reshape(2, num_keys, 4, 4).transpose(1, 2)
    weights = torch.softmax(qh @ kh.transpose(-2, -1) / 2.0, dim=-1)  # sqrt(head dim 4) = 2
    expected = attn.out_proj((weights @ vh).transpose(1, 2).reshape(2, 70, 16))
    with torch.no_grad():
        torch.testing.assert_close(attn(q, kv, kv), expected, rtol=1e-5, atol=1e-5)
        out, got_weights = attn(q, kv, kv, return_attn=True)
    torch.testing.assert_close(got_weights, weights, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got_weights.sum(-1), torch.ones(2, 4, 70))
    assert (num_keys <= attn.explicit_max_keys) == (num_keys == 19)

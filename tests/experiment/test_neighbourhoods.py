"""The paper's perturbation neighbourhoods."""

from __future__ import annotations

import pytest
import torch

from crlm_bench.experiment.neighbourhoods import image_ranks, perturbation_neighbourhoods, subset_masks


def random_image(seed: int, shape=(3, 32, 32)) -> torch.Tensor:
    return torch.randint(0, 256, (1, *shape), generator=torch.Generator().manual_seed(seed)).to(torch.uint8)


def test_ten_toggles_give_1023_distinct_neighbours():
    nbs = perturbation_neighbourhoods(random_image(0), 10)
    assert nbs.shape == (1, 1023, 3, 32, 32)
    flat = nbs[0].flatten(1)
    assert torch.unique(flat, dim=0).shape[0] == 1023
    assert not bool((flat == random_image(0).flatten().double()).all(1).any())  # none is the image itself


@pytest.mark.parametrize("toggles", [1, 3, 7])
def test_fewer_toggles(toggles):
    nbs = perturbation_neighbourhoods(random_image(1), toggles)
    assert nbs.shape[1] == 2**toggles - 1
    assert torch.unique(nbs[0].flatten(1), dim=0).shape[0] == 2**toggles - 1


def test_each_neighbour_zeroes_exactly_its_subset_of_the_smallest_values():
    image = random_image(2)
    x = image[0].double()
    s = torch.linalg.svdvals(x)  # (C, 32), descending
    nbs = perturbation_neighbourhoods(image, 4)[0]  # subsets of the 4 smallest
    masks = subset_masks(4).bool()
    for j in (0, 5, 14):  # neighbour j zeroes the values whose bits are set in j + 1
        got = torch.linalg.svdvals(nbs[j])
        expected = s.clone()
        smallest = [31 - b for b in range(4)]  # bit b = the (b+1)-th smallest
        for b in range(4):
            if masks[j, b]:
                expected[:, smallest[b]] = 0.0
        torch.testing.assert_close(got.sort(-1).values, expected.sort(-1).values, atol=1e-8, rtol=1e-9)


def test_rank_is_counted_per_image_with_a_tolerance():
    full = random_image(3)
    low = full.clone()
    low[0, :, 10:] = low[0, :, :1]  # rows 10… repeat row 0: rank 10 in every channel
    ranks = image_ranks(torch.cat([full, low]))
    assert ranks.tolist() == [32, 10]
    # the low-rank image's smallest nonzero values are its own, not the batch minimum
    nbs = perturbation_neighbourhoods(torch.cat([full, low]), 3)
    assert nbs.shape == (2, 7, 3, 32, 32)
    assert float((nbs[1] - low[0].double()).abs().max()) > 1e-6


def test_too_few_nonzero_values_is_a_clear_error():
    flat = torch.full((1, 3, 32, 32), 7, dtype=torch.uint8)  # rank 1
    with pytest.raises(ValueError, match=r"fewer than 10 nonzero singular values.*image_ranks"):
        perturbation_neighbourhoods(torch.cat([random_image(4), flat]), 10)


def test_bad_shape_and_toggles():
    with pytest.raises(ValueError, match=r"shape \(B, C, H, W\)"):
        perturbation_neighbourhoods(torch.zeros(3, 32, 32), 2)
    with pytest.raises(ValueError, match="toggles"):
        subset_masks(0)


@pytest.mark.parametrize("toggles", [3, 10])
def test_neighbourhoods_span_an_affine_space_of_dimension_toggles(toggles):
    """Zeroing singular components is linear: the displacements span (at most) 'toggles' dimensions
    per image, so the input neighbourhood is flat and its intrinsic dimension is at most 'toggles'."""
    image = random_image(5)
    nbs = perturbation_neighbourhoods(image, toggles)[0].flatten(1)
    disp = nbs - image.flatten().double()
    s = torch.linalg.svdvals(disp)
    assert int((s > 1e-9 * s[0]).sum()) == toggles


def exact_rank_batch(rank: int, n: int = 3, seed: int = 0, shape=(2, 12, 10)) -> torch.Tensor:
    """``n`` float images whose every channel has exactly ``rank`` nonzero singular values."""
    gen = torch.Generator().manual_seed(seed)
    c, h, w = shape
    left = torch.randn(n, c, h, rank, generator=gen, dtype=torch.float64)
    right = torch.randn(n, c, rank, w, generator=gen, dtype=torch.float64)
    return left @ right


@pytest.mark.parametrize("toggles", [1, 3, 5])
def test_the_released_neighbours_are_the_papers_subsets_where_every_image_has_the_batch_rank(toggles):
    from crlm_bench.experiment.neighbourhoods import released_neighbourhoods

    batch = exact_rank_batch(6)
    theirs = released_neighbourhoods(batch.float(), toggles)
    assert theirs.shape == (3, 2**toggles - 1, 2, 12, 10) and theirs.dtype == torch.float32
    ours = perturbation_neighbourhoods(batch, toggles)  # float64, same subsets in the same order
    assert torch.allclose(theirs.double(), ours, atol=1e-4 * float(batch.abs().max()))
    one = released_neighbourhoods(batch.float(), toggles, image=1)  # one image, the batch's rank
    assert one.shape == (1, *theirs.shape[1:]) and torch.allclose(one[0], theirs[1], rtol=1e-5, atol=1e-4)


def test_the_released_neighbours_take_the_batch_rank_and_truncate_every_image_to_it():
    from crlm_bench.experiment.neighbourhoods import released_neighbourhoods, released_toggles

    batch = torch.cat([exact_rank_batch(8, 2, seed=1), exact_rank_batch(3, 1, seed=2)]).float()
    assert released_toggles(batch, 10) == 3 and released_toggles(batch, 2) == 2
    nbs = released_neighbourhoods(batch, 10)
    assert nbs.shape[1] == 2**3 - 1
    # every neighbour of a rank-8 image is built from its top 3 components only
    u, s, vh = torch.linalg.svd(batch[0].double(), full_matrices=False)
    top3 = (u[..., :3] * s[..., None, :3]) @ vh[..., :3, :]
    last = nbs[0, -1].double()  # all three toggled: the top 3 − 3 = 0 components … nothing left
    assert torch.allclose(last, torch.zeros_like(last), atol=1e-4)
    first = nbs[0, 0].double()  # only the smallest of the three toggled
    third = (u[..., 2:3] * s[..., None, 2:3]) @ vh[..., 2:3, :]
    assert torch.allclose(first, top3 - third, atol=1e-3)


def test_the_released_neighbours_refuse_integer_images():
    from crlm_bench.experiment.neighbourhoods import released_neighbourhoods

    with pytest.raises(ValueError, match="float tensor"):
        released_neighbourhoods(random_image(0), 3)

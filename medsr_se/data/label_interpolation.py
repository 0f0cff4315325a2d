"""A label map (segmentation) drawn on the thick slices, carried to the through-plane result's thin slices by
shape-based interpolation (Raya & Udupa, IEEE TMI 1990).

For each label l, one at a time, every thick slice k that holds it gets a signed distance map in its own plane (mm,
the in-plane voxel sizes as ``sampling``; + inside, − outside; the boundary half-way between an inside and an
outside voxel):

    d_k(x) = edt(mask)(x) − edt(~mask)(x)            (scipy.ndimage.distance_transform_edt)

Output slice j lies at input slice index p_j, the result's own grid (:meth:`SliceGrid.input_indices
<medsr_se.io.slice_grid.SliceGrid.input_indices>`: (j + 0.5)/r − 0.5 for r·N slices, as
:mod:`medsr_se.inference.through_plane` places them; (j + 0.5)·t/D − 0.5 for a target spacing t), clamped to
[0, N − 1]; with k = ⌊p_j⌋ and t = p_j − k,

    D_j(x) = (1 − t)·d_k(x) + t·d_{k+1}(x)

A slice without the label has no distance map; where one of the two slices lacks it, its map is the other's
capped (:func:`end_cap`): −m_c inside each connected piece c of the other slice's mask (m_c its deepest distance),
the other's own value outside. Each piece then ends half-way to the slice without it as a cone: its deepest voxel
reaches half-way (as a thick slice covers its own half-spacing), its rim less; where neither slice holds the label
it is absent. Each voxel takes the label whose D_j is largest and positive (the most
inside), background 0 where none is inside. Nothing else is invented: only labels of the input appear. None is
lost: each label of a thick slice k appears on the output slice(s) nearest to k (and on every output slice whose
nearest thick slice is k): where the competition removed it, it is put back on its voxels of slice k.

Memory: the result, one float map of its size, and one label's distance maps (cropped to that label's bounding box,
padded by a voxel, which leaves them exact) at a time.

    thin = interpolate_labels(labels, axis, sampling, grid.input_indices())    one output slice per position
    write_upscaled_labels(label_map, grid, "out/scan_selfsr_x4_labels.nii.gz")  on the result's grid
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from medsr_se.io.label_maps import LabelMap, write_label_map
from medsr_se.io.slice_grid import SliceGrid

log = logging.getLogger(__name__)

__all__ = ["end_cap", "interpolate_labels", "signed_distance", "write_upscaled_labels"]


def signed_distance(mask: np.ndarray, sampling: tuple[float, float]) -> np.ndarray:
    """(H, W) float32, mm: the distance from each inside voxel to the nearest outside one (positive), minus the
    distance from each outside voxel to the nearest inside one; ``sampling``: the voxel size along each axis. A mask
    without an outside voxel is inside everywhere by more than the slice's extent."""
    from scipy import ndimage

    if mask.all():
        extent = float(np.hypot(*(n * s for n, s in zip(mask.shape, sampling)))) + max(sampling)
        return np.full(mask.shape, extent, np.float32)
    inside = ndimage.distance_transform_edt(mask, sampling=sampling)
    outside = ndimage.distance_transform_edt(~mask, sampling=sampling)
    return (inside - outside).astype(np.float32)


def end_cap(distance: np.ndarray) -> np.ndarray:
    """The distance map standing for a neighbouring slice that lacks the label: −m_c on each connected piece c of
    ``distance > 0`` (m_c = its largest distance), ``distance`` itself outside. Interpolated towards it, a voxel at
    depth d of piece c stays inside up to the fraction d / (d + m_c) < 0.5 of the way: the deepest reaches half-way,
    so every piece is on each output slice nearer to its own slice than half-way."""
    from scipy import ndimage

    inside = distance > 0
    pieces, count = ndimage.label(inside)
    if count == 0:
        return distance
    deepest = np.asarray(ndimage.maximum(distance, pieces, index=np.arange(1, count + 1)), np.float32)
    return np.where(inside, -deepest[np.maximum(pieces - 1, 0)], distance).astype(np.float32)


def _labels_per_slice(slices: np.ndarray) -> list[set[int]]:
    """The labels (not 0) on each slice of (N, H, W)."""
    return [set(np.unique(plane).tolist()) - {0} for plane in slices]


def _bounding_box(slices: np.ndarray, label: int, holding: list[int]) -> tuple[slice, slice]:
    """The in-plane box holding ``label`` on every slice of ``holding``, padded by one voxel within the slice: every
    outside voxel nearest to an inside one of the box lies in it, so the distances cropped to it are exact."""
    rows = np.zeros(slices.shape[1], bool)
    columns = np.zeros(slices.shape[2], bool)
    for k in holding:
        mask = slices[k] == label
        rows |= mask.any(axis=1)
        columns |= mask.any(axis=0)
    box = []
    for present, size in ((rows, slices.shape[1]), (columns, slices.shape[2])):
        found = np.flatnonzero(present)
        box.append(slice(max(int(found[0]) - 1, 0), min(int(found[-1]) + 2, size)))
    return box[0], box[1]


def interpolate_labels(labels: np.ndarray, axis: int, sampling: tuple[float, float],
                       positions: np.ndarray) -> np.ndarray:
    """``labels`` (3-D, integer) with one output slice along ``axis`` per entry of ``positions`` (each an input
    slice index, fractional; clamped to [0, N − 1]), by shape-based interpolation (module docstring); ``sampling``:
    the voxel size (mm) of the two other axes, in order. The result has ``labels``' dtype and only its labels."""
    if labels.ndim != 3 or labels.dtype.kind not in "iub":
        raise TypeError(f"labels: a 3-D integer array is needed, not {labels.ndim}-D {labels.dtype}")
    slices = np.moveaxis(labels, axis, 0)  # (N, H, W), a view
    count = slices.shape[0]
    given = np.asarray(positions, np.float64)
    positions = np.clip(given, 0, count - 1)
    lower = np.floor(positions).astype(int)
    upper = np.minimum(lower + 1, count - 1)
    weight = (positions - lower).astype(np.float32)
    result = np.zeros((len(positions),) + slices.shape[1:], labels.dtype)
    most_inside = np.zeros(result.shape, np.float32)  # the largest D_j so far: 0 = background unless one is inside
    present = _labels_per_slice(slices)
    sampling = (float(sampling[0]), float(sampling[1]))
    for label in sorted(set().union(*present)):
        holding = [k for k in range(count) if label in present[k]]
        rows, columns = _bounding_box(slices, label, holding)
        distances = {k: signed_distance(slices[k, rows, columns] == label, sampling) for k in holding}
        caps: dict[int, np.ndarray] = {}  # end_cap of a slice, made when a neighbour lacks the label
        for j in np.flatnonzero(np.isin(lower, holding) | np.isin(upper, holding)):
            k, after = int(lower[j]), int(upper[j])
            below, above = distances.get(k), distances.get(after)
            if below is None or above is None:
                held = after if below is None else k
                if held not in caps:
                    caps[held] = end_cap(distances[held])
                below, above = (caps[held], above) if below is None else (below, caps[held])
            value = (1 - weight[j]) * below + weight[j] * above
            best, chosen = most_inside[j, rows, columns], result[j, rows, columns]  # views
            wins = value > best
            best[wins] = value[wins]
            chosen[wins] = label
        del distances, caps
    _keep_nearest_slice_labels(result, slices, present, given)
    return np.moveaxis(result, 0, axis)


def _keep_nearest_slice_labels(result: np.ndarray, slices: np.ndarray, present: list[set[int]],
                               positions: np.ndarray) -> None:
    """Every label of a thick slice on the output slices nearest to it, and on every output slice whose nearest
    thick slice it is: one the competition removed is put back on its voxels of that thick slice (the labels of one
    slice differ voxel by voxel, so none is put over another of the same slice). The pairs nearest to each thick
    slice come last: where the two rules meet (the last slices of a grid finer by less than 1.5), they win."""
    count = len(slices)
    own = [(j, int(k)) for j, k in enumerate(np.rint(np.clip(positions, 0, count - 1)))]
    distance = np.abs(positions[None, :] - np.arange(count)[:, None])  # (thick slice, output slice)
    nearest = [(int(j), k) for k in range(count) for j in np.flatnonzero(distance[k] == distance[k].min())]
    for j, k in own + nearest:
        missing = present[k] - set(np.unique(result[j]).tolist())
        for label in sorted(missing):
            log.debug("label %s put back on output slice %d from slice %d", label, j, k)
            result[j][slices[k] == label] = label


def write_upscaled_labels(label_map: LabelMap, grid: SliceGrid, target: Path) -> np.ndarray:
    """``label_map`` interpolated to the slices of the through-plane result's ``grid``
    (:meth:`~medsr_se.io.slice_grid.SliceGrid.input_indices`) and written to ``target`` on the result's grid
    (:func:`medsr_se.io.label_maps.write_label_map`, the slice spacing divided by ``grid.scale`` as the result's);
    returns the values written."""
    if label_map.values.shape[label_map.axis] != grid.input_count:
        raise ValueError(f"the label map has {label_map.values.shape[label_map.axis]} slices, the grid "
                         f"{grid.input_count}")
    values = interpolate_labels(label_map.values, label_map.axis, label_map.sampling, grid.input_indices())
    write_label_map(label_map, values, grid.scale, Path(target))
    return values

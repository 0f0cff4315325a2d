"""One medsr-selfsr run on one scan, before and after its network: what is planned and checked before anything is
made under the output folder, and what is produced from the network's slices. The network itself (trained, or
loaded from a model file, and applied to every sagittal and coronal slice) is the caller's, between the steps:

    plan = plan_run(scan_path, output, target_spacing=0.9, labels=seg)   1. all that can fail before output is made
    net = load_through_plane_model(model, plan.r, device)                   a model given: loaded (checked) here
    finish_plan(plan, time_budget_s=180, started=started)                2. the notes; the training's iterations
    model = train(plan.training, output, plan.experiment)                   output made; else trained, then loaded
    values, _ = apply_network(plan.scan.values, plan.scan.geometry, net)    the network's r·N slices
    report = produce(plan, values, net, model, clock)                    3. the files written

1. :func:`plan_run`: the ``slice_profile`` kernel read, the scan read (:func:`read_scan`), the result's slice grid
   chosen (:func:`medsr_se.io.slice_grid.choose_grid`: t = ``target_spacing``, or slice spacing / ``scale``; the
   network at r = ⌈D / t⌉), the paths of the result, report, sheet and label map named (:func:`result_name`), none
   of which may exist (:class:`ResultExists` for the result itself, :class:`OutputExists` for the others: nothing
   is overwritten), the ``labels`` map read and checked against the scan's grid, the slice thickness estimated from
   the scan when it is only assumed (no model, no kernel), and the training options (the ``recipe`` checked).
2. :func:`finish_plan`: the note on the slice profile the run rests on (a warning when its thickness is assumed)
   and, when training, the iterations (``iterations=``, or as many as fit ``time_budget_s`` since ``started``;
   an :class:`~medsr_se.errors.OptionError` when none fit). Still nothing is created.
3. :func:`produce`: ``data_consistency`` (the least correction that makes the r·N slices give the scan's slices
   back), the r·N slices resampled onto the grid and written as the scan's kind, the label map on the result's grid,
   the report (``<result>_report.json``: the run's facts, timed by the caller's
   :class:`~medsr_se.evaluation.selfsr_report.StepClock`, and the LR consistency) and the ``sheet`` PNG.

Errors are :class:`~medsr_se.errors.MedSRError` naming the file or the parameter (``target_spacing=``); notes and
warnings go through logging. ``given_as``: the names a caller took its parameters under (a command's flags), for
what the run writes and says of them: the slice thickness's source (options file, report), the kernel's, and the
output folder an existing file's error advises changing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from medsr_se.data.degradations import SliceProfile, load_profile
from medsr_se.data.label_interpolation import write_upscaled_labels
from medsr_se.data.profile_estimation import estimate_thickness
from medsr_se.data.slice_profile_notes import assumed_thickness_warning, slice_profile_note
from medsr_se.errors import MedSRError, OptionError
from medsr_se.evaluation import selfsr_report as reports
from medsr_se.evaluation.sheets import write_sheet
from medsr_se.inference.data_consistency import consistency_note, make_consistent, scan_profile, stored_dtype
from medsr_se.inference.slice_resampling import to_grid
from medsr_se.integration.experiment_state import FINGERPRINT_KEY, training_fingerprint
from medsr_se.integration.selfsr_training import training_options
from medsr_se.integration.training_budget import choose_budget
from medsr_se.io import scans, slice_grid, volumes
from medsr_se.io.label_maps import LabelMap, read_label_map
from medsr_se.io.publish import archive_folder

log = logging.getLogger(__name__)
STARTED_FROM_KEY = "selfsr_started_from"  # in the training options: {model, sha256} of the start weights

DESCRIPTION = "medsr-selfsr through-plane SR x{r} (self-supervised, slice spacing / {r})"  # of a derived series
RESAMPLED = "medsr-selfsr through-plane SR to {t:g} mm slices (self-supervised x{r}, cubic B-spline to {t:g} mm)"


class OutputExists(OptionError):
    """A file the run would write exists (nothing is overwritten); ``path``: which; ``output``: what the caller
    calls its output folder (a command's flag)."""

    def __init__(self, path: Path, output: str = "output=FOLDER") -> None:
        super().__init__(f"{path}: exists; remove it or choose another {output} (nothing was overwritten)",
                         parameter="output")
        self.path, self.output = Path(path), output

    def __reduce__(self):  # picklable: rebuilt from its path
        return type(self), (self.path, self.output)


class ResultExists(OutputExists):
    """The run's result exists: a cohort run takes the scan as done already."""


@dataclasses.dataclass
class SelfSRPlan:
    """What :func:`plan_run` decided and checked, carried to :func:`finish_plan` and :func:`produce`.

    Attributes:
        scan_path / output: the scan given and the folder everything is written into.
        scan: the scan read (its thickness estimated when it was only assumed and is estimated).
        grid: the result's slices (t, M) and the network's r.
        kernel / kernel_file: the ``slice_profile`` kernel and its file (None: the Gaussian of the thickness).
        experiment: the training's name, ``<scan>_selfsr_x<r>`` (one per r, whatever the target spacing).
        result / report / sheet / labels: the paths written (``sheet``, ``labels``: None when not asked for).
        label_map: the label map read, to be written on the result's grid as ``labels``.
        model: the model file given (None: trained); training: the training options (None: a model was given).
        device / data_consistency / given_as: as given to :func:`plan_run`.
    """

    scan_path: Path
    output: Path
    scan: scans.Scan
    grid: slice_grid.SliceGrid
    kernel: SliceProfile | None
    kernel_file: Path | None
    experiment: str
    result: Path
    report: Path
    sheet: Path | None
    labels: Path | None
    label_map: LabelMap | None
    model: Path | None
    training: dict | None
    device: str
    data_consistency: bool
    given_as: Mapping[str, str]

    @property
    def r(self) -> int:
        """The network's scale along the slice axis."""
        return self.grid.network_scale

    @property
    def in_plane_slices(self) -> int:
        """How many sagittal and coronal slices the network is applied to."""
        return sum(self.scan.values.shape[a] for a in self.scan.volume.in_plane_axes)

    def given_name(self, parameter: str) -> str:
        """What the caller calls ``parameter`` (``given_as``; else its own name)."""
        return self.given_as.get(parameter, parameter)


def result_name(source: Path, r: int | str) -> str:
    """``<scan>_selfsr_x<r>``; a str ``r`` (a grid's label, ``0.9mm``) stands in place of ``x<r>``."""
    stem = volumes.nifti_stem(source) if volumes.is_nifti(source) else source.resolve().name
    return f"{stem}_selfsr_{r}" if isinstance(r, str) else f"{stem}_selfsr_x{r}"


def read_scan(path: Path, *, axis: int | None = None, slice_thickness: float | None = None,
              nonfinite: float | None = None, given_as: Mapping[str, str] | None = None) -> scans.Scan:
    """:func:`medsr_se.io.scans.read_scan`, a given thickness's source said under the caller's name for
    ``slice_thickness`` (``from --slice-thickness``; the library says ``from slice_thickness``)."""
    scan = scans.read_scan(path, axis, slice_thickness, nonfinite)
    name = (given_as or {}).get("slice_thickness")
    if scan.geometry.thickness_source != scans.FROM_OPTION or name is None:
        return scan
    given = dataclasses.replace(scan.geometry, thickness_source=f"from {name}")
    return dataclasses.replace(scan, geometry=given)


def check_not_there(*paths: Path, result: Path | None = None, output: str = "output=FOLDER") -> None:
    """:class:`ResultExists` when ``result`` exists (a file, a folder or a link), :class:`OutputExists` for the
    first of ``paths`` that does (``output``: what the caller calls its output folder)."""
    for path in ([result] if result is not None else []) + list(paths):
        if path.exists() or path.is_symlink():
            raise (ResultExists if path == result else OutputExists)(path, output)


def plan_run(scan_path: Path, output: Path, *, scale: int | None = None, target_spacing: float | None = None,
             slice_thickness: float | None = None, slice_profile: Path | None = None, axis: int | None = None,
             nonfinite: float | None = None, labels: Path | None = None, model: Path | None = None,
             recipe: str | Path = "selfsr", device: str = "auto", sheet: bool = False,
             data_consistency: bool = False, given_as: Mapping[str, str] | None = None) -> SelfSRPlan:
    """Step 1 (module docstring): everything checked and decided before anything is created under ``output``."""
    scan_path, output, given_as = Path(scan_path), Path(output), dict(given_as or {})
    kernel = load_profile(slice_profile) if slice_profile is not None else None  # DataError naming it
    scan = read_scan(scan_path, axis=axis, slice_thickness=slice_thickness, nonfinite=nonfinite, given_as=given_as)
    grid = slice_grid.choose_grid(scan.geometry, scan.values.shape[scan.geometry.axis], scan.name, scale,
                                  target_spacing)
    name, experiment = result_name(scan_path, grid.label), result_name(scan_path, grid.network_scale)
    result = output / (f"{name}.nii.gz" if scan.volume.kind == "nifti" else name)
    report = reports.report_path(output, name)
    sheet_path = output / f"{name}_sheet.png" if sheet else None
    output_name = given_as.get("output", "output=FOLDER")
    check_not_there(*[path for path in (sheet_path,) if path is not None], result=result, output=output_name)
    # the report is written always: one left by a run whose result is gone is moved aside in produce()
    labels_path = output / f"{name}_labels.nii.gz" if labels is not None else None
    if labels_path is not None:
        check_not_there(labels_path, output=output_name)
    label_map = read_label_map(labels, scan) if labels is not None else None  # checked before training
    if model is None and kernel is None and scan.geometry.thickness_assumed:
        scan = estimate_thickness(scan)
    training = None if model is not None else training_options(  # the recipe checked: nothing made yet
        recipe, scan, grid.network_scale, experiment, scan_path=scan_path, slice_profile=slice_profile,
        nonfinite=nonfinite, device=device)
    return SelfSRPlan(scan_path=scan_path, output=output, scan=scan, grid=grid, kernel=kernel,
                      kernel_file=Path(slice_profile) if slice_profile else None, experiment=experiment,
                      result=result, report=report, sheet=sheet_path, labels=labels_path, label_map=label_map,
                      model=model, training=training, device=device, data_consistency=data_consistency,
                      given_as=given_as)


def start_problem(plan: SelfSRPlan, model: Path) -> str | None:
    """Why ``model`` cannot start the planned training (None: it can): it must load as the generator the recipe
    builds (its stored ``network_g``, r included, equal to the recipe's; its weights strictly)."""
    from medsr_se.inference.checkpoint import load_generator

    try:
        load_generator(str(model), options=plan.training["network_g"])
    except MedSRError as error:
        return str(error).split("; the stored one is")[0]
    except OSError as error:
        return f"{model}: {error.strerror or error}"
    return None


def start_training_from(plan: SelfSRPlan, model: Path) -> None:
    """The planned training starts from the weights of ``model`` (a through-plane model of this r, e.g. the one
    trained on the cohort's scan before: ``--shared``; :func:`start_problem` checks it first) instead of from
    scratch: BasicSR's ``path:pretrain_network_g``, strict, the recipe's ``param_key_g`` (``params_ema``, else
    ``params``). The file's sha256 goes into the report (``network.started_from``) and into the fingerprint that
    decides whether saved states may be resumed, so a start file rewritten since is not taken for the same."""
    if plan.training is None:
        raise OptionError(f"model={plan.model}: a model given is applied, not trained: nothing to start from "
                          f"{model}", parameter="model")
    model = Path(model).resolve()
    sha256 = hashlib.sha256(model.read_bytes()).hexdigest()
    plan.training.setdefault("path", {}).update(pretrain_network_g=str(model), strict_load_g=True)
    plan.training[STARTED_FROM_KEY] = {"model": str(model), "sha256": sha256}
    fingerprint = training_fingerprint(plan.training, plan.scan.values, plan.kernel_file)
    plan.training[FINGERPRINT_KEY] = {**fingerprint, "pretrain_network_g_sha256": sha256}
    log.info(f"the training starts from {model} (its weights), not from scratch (a training resumed from its own "
             "saved state goes on from that state)")


def start_training_from_if_it_fits(plan: SelfSRPlan, model: Path, trained_on: str) -> bool:
    """:func:`start_training_from` ``model`` (trained on the scan ``trained_on``, as ``--shared`` passes it on) when
    it loads as the recipe's generator (:func:`start_problem`); else a warning naming the difference, and the
    training starts from scratch. Whether it started from ``model``."""
    problem = start_problem(plan, model)
    if problem is not None:
        log.warning(f"--shared: the model of {trained_on} cannot start this scan's training ({problem}); it trains "
                    "from scratch")
        return False
    start_training_from(plan, model)
    return True


def started_from(training: dict | None) -> dict | None:
    """{model, sha256} of the file whose weights the training started from (None: from scratch, or no training)."""
    return None if training is None else training.get(STARTED_FROM_KEY)


def finish_plan(plan: SelfSRPlan, *, iterations: int | None = None, time_budget_s: float | None = None,
                started: float | None = None) -> None:
    """Step 2 (module docstring): the slice profile the run rests on said (a warning when its thickness is only
    assumed), and when training, its iterations set in ``plan.training`` (``started``: when the budget began, on
    time.monotonic()'s clock)."""
    log.info(slice_profile_note(plan.scan, plan.r, plan.kernel, plan.given_name("slice_profile")))
    assumed = None if plan.kernel is not None else assumed_thickness_warning(plan.scan)
    if assumed:
        log.warning(f"{assumed}: give slice_thickness=MM (the protocol's slice thickness)")
    if plan.training is not None:  # a note says how many iterations and why; a budget too short is an error here
        choose_budget(plan.training, plan.scan.values.shape, plan.scan.geometry.axis, iterations=iterations,
                      time_budget_s=time_budget_s, device=plan.device, started=started)


def training_noise(training: dict | None) -> tuple[float, str] | None:
    """(σ̂, source) of the noise matching in the training options (None: no training here)."""
    if training is None:
        return None
    train_set = training["datasets"]["train"]
    return float(train_set.get("lr_noise") or 0.0), str(train_set.get("lr_noise_source", "off"))


def training_precision(training: dict | None) -> tuple[str, str] | None:
    """(precision, why) of the training's forward passes (``auto`` resolved for this device; None: no training)."""
    if training is None:
        return None
    train = training["train"]
    return str(train.get("precision", "fp32")), str(train.get("precision_source", "train:precision in the recipe"))


def made_consistent(plan: SelfSRPlan, values: np.ndarray) -> np.ndarray:
    """The network's r·N slices corrected to give the scan's slices back (float64, before the writer rounds to the
    scan's type), with a note on the correction."""
    scan, grid = plan.scan, plan.grid
    fixed = make_consistent(values, scan.values, scan.geometry.axis, scan_profile(scan.geometry, plan.kernel), plan.r)
    log.info(consistency_note(fixed, plan.r, stored_dtype(scan.volume), grid.spacing if grid.resampled else None))
    return fixed.values


def produce(plan: SelfSRPlan, values: np.ndarray, net, model: Path, clock: reports.StepClock) -> dict:
    """Step 3 (module docstring) from ``values``, the network ``net``'s r·N slices (``model``: its file): the result,
    the label map, the report and the sheet written; the report (a dict, as written)."""
    scan, grid, r = plan.scan, plan.grid, plan.r
    if plan.data_consistency:
        values = made_consistent(plan, values)
    description = RESAMPLED.format(r=r, t=grid.spacing) if grid.resampled else DESCRIPTION.format(r=r)
    scans.write_result(scan, to_grid(values, scan.geometry.axis, grid), grid.scale, plan.result, description)
    if plan.label_map is not None:
        write_upscaled_labels(plan.label_map, grid, plan.labels)
    report = reports.run_report(reports.SelfSRRun(
        plan.scan_path, plan.result, scan, values, r, model,
        plan.training["train"]["total_iter"] if plan.training else None, reports.network_device(net), clock,
        kernel=plan.kernel, kernel_file=plan.kernel_file, kernel_source=plan.given_name("slice_profile"),
        corrected=plan.data_consistency, written=(grid.count, grid.spacing) if grid.resampled else None,
        training_noise=training_noise(plan.training), training_precision=training_precision(plan.training),
        started_from=started_from(plan.training)))
    if plan.sheet is not None:
        write_sheet(scan, values, r, plan.sheet, reports.sheet_caption(report))
    if plan.report.exists() or plan.report.is_symlink():  # its result is gone (plan_run refused otherwise)
        moved = archive_folder(plan.report)
        log.info(f"{plan.report}: left by an earlier run whose result is no longer there; moved aside to {moved.name}")
    reports.write_report(plan.report, report)
    return report

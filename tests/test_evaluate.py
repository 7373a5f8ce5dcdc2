"""Evaluate PuLID Batch without models: every bad input is a PulidError naming it (never a numpy or torch
message), labels are read one per line, the report says what each number is. The node run on generated
models (and through ComfyUI's executor) is tests/host/test_evaluate_node.py."""
import pytest
import torch

from testkit.pack import pack_module

errors = pack_module("pulid.errors")
evaluate = pack_module("nodes.evaluate")

REF = torch.rand(1, 32, 48, 3)
IMAGES = torch.rand(3, 32, 48, 3)


def check(**changes):
    args = {"reference": REF, "images": IMAGES, "prompt": "a portrait", "baseline": None, "labels": None}
    args.update(changes)
    return evaluate.check_inputs(**args)


@pytest.mark.parametrize("changes,names,match", [
    ({"images": torch.zeros(0, 32, 48, 3)}, "images", r"empty `images` batch"),
    ({"reference": torch.zeros(0, 32, 48, 3)}, "reference", r"empty `reference` batch"),
    ({"prompt": ""}, "prompt", r"`prompt` is empty"),
    ({"prompt": "  \n "}, "prompt", r"`prompt` is empty"),
    ({"prompt": "(embedding:my_face:1.2), embedding:style"}, "prompt", r"`prompt` is empty \(or has no words"),
    ({"baseline": torch.zeros(0, 32, 48, 3)}, "baseline", r"empty `baseline` batch"),
    ({"baseline": torch.rand(2, 32, 48, 3)}, "baseline", r"`baseline` has 2 images but `images` has 3"),
    ({"baseline": torch.rand(1, 48, 32, 3)}, "baseline", r"`baseline` is 32x48 but `images` are 48x32"),
    ({"baseline": torch.rand(3, 64, 48, 3)}, "baseline", r"`baseline` is 48x64"),
    ({"labels": "a\nb"}, "labels", r"`labels` has 2 lines but `images` has 3 images"),
    ({"labels": "a\nb\nc\nd"}, "labels", r"`labels` has 4 lines"),
])
def test_bad_input_is_an_error_naming_it(changes, names, match):
    with pytest.raises(errors.PulidError, match=match) as caught:
        check(**changes)
    assert f"`{names}`" in str(caught.value) and "Evaluate PuLID Batch" in str(caught.value)


def test_empty_prompt_is_the_librarys_message():
    empty_prompt = pack_module("pulid.clip_text").empty_prompt
    for prompt in ("", "embedding:style"):
        with pytest.raises(errors.PulidError) as caught:
            check(prompt=prompt)
        assert str(caught.value) == str(empty_prompt(prompt, where="Evaluate PuLID Batch"))


def test_labels_one_per_line_or_numbered():
    assert check() == ["image 0", "image 1", "image 2"]
    assert check(labels="") == ["image 0", "image 1", "image 2"]
    assert check(labels="\nw 0 baseline\n  w 0.6 fidelity \nw 0.6 style\n\n") == [
        "w 0 baseline", "w 0.6 fidelity", "w 0.6 style"]
    assert check(baseline=torch.rand(1, 32, 48, 3)) == ["image 0", "image 1", "image 2"]
    assert check(baseline=torch.rand(3, 32, 48, 3), labels="a\nb\nc") == ["a", "b", "c"]


def test_report_one_line_per_image_then_the_means():
    lines = evaluate.report_lines(["w 0 baseline", "w 1.0 style"], [0.25, None], [30.0, 27.5], [1.0, 0.8],
                                  "truncated: 77 of 90 tokens")
    assert lines[0] == "0: likeness 0.2500 | prompt adherence 30.00 | preservation 1.0000 | w 0 baseline"
    assert lines[1] == "1: no face | prompt adherence 27.50 | preservation 0.8000 | w 1.0 style"
    assert lines[2] == "mean: likeness 0.2500 over 1 of 2 images | prompt adherence 28.75 | preservation 0.9000"
    assert lines[3].startswith("prompt truncated: 77 of 90 tokens")
    plain = evaluate.report_lines(["a"], [None], [20.0], None)
    assert plain == ["0: no face | prompt adherence 20.00 | a",
                     "mean: no face in any of the 1 images (likeness output is 0.0) | prompt adherence 20.00 | "
                     "preservation: no baseline (output is 0.0)"]


def test_report_with_a_mask_gives_the_largest_difference_outside_it():
    lines = evaluate.report_lines(["before", "after"], [0.5, 0.25], [30.0, 28.0], [1.0, 0.9], outside=[0.0, 0.125])
    assert lines[0] == ("0: likeness 0.5000 | prompt adherence 30.00 | preservation 1.0000 | outside mask max diff "
                        "0.0000 | before")
    assert lines[1].endswith("| outside mask max diff 0.1250 | after")
    assert lines[2].endswith("| preservation 0.9500 | outside mask max diff 0.1250")  # the batch's largest


@pytest.mark.parametrize("mask,match", [
    (torch.ones(1, 64, 64), r"`mask` is 64x64 but the pictures are 48x32"),
    (torch.ones(2, 32, 48), r"`mask` holds 2 masks for 3 pictures"),
])
def test_bad_mask_is_named_before_any_model_runs(mask, match):
    def refuse(*args, **kwargs):
        raise AssertionError("a model ran before the mask was checked")

    handle = type("Handle", (), {"encoder": property(refuse), "clip_text": property(refuse)})()
    with pytest.raises(errors.PulidError, match=match):
        evaluate.PuLIDSDXLEvaluate().evaluate(handle, REF, IMAGES, "a portrait", "largest", baseline=IMAGES,
                                              mask=mask)

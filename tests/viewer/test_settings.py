"""Remembered settings: absolute paths, no demo-only choices, errors say where a setting came from,
"Reset settings" forgets them, and options given at launch win (and are not remembered)."""

import os

from apps.viewer.options import ViewerOptions, blame_remembered, remembered_options, save_options


def test_paths_are_remembered_absolute_and_random_weights_never(settings, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    save_options(ViewerOptions(model="models/m.yaml", weights="random", tracker="trk.yaml",
                               detector="rtmdet-s"), settings)  # fmt: skip
    opts, remembered = remembered_options(settings)
    assert opts.model == str(tmp_path / "models/m.yaml") and opts.tracker == str(tmp_path / "trk.yaml")
    assert opts.detector == "rtmdet-s"  # names stay names
    assert opts.weights == "" and "weights" not in remembered
    assert {"model", "tracker", "detector"} <= remembered
    # a value stored by an older version is not taken either
    settings.setValue("options/weights", "random")
    assert remembered_options(settings)[0].weights == ""


def test_error_names_the_remembered_setting(make_window, settings, qtbot, video, tmp_path):
    gone = tmp_path / "gone" / "trk.yaml"
    save_options(ViewerOptions(model="none", tracker=str(gone)), settings)
    w = make_window()  # what a launch without options gets
    with qtbot.waitSignal(w.run_ended, timeout=10000) as blocker:
        assert not w.open_source(video)
    message = blocker.args[0]
    assert f"remembered setting tracker={gone}" in message and "file not found" in message
    assert "Reset settings" in message and message == w.statusBar().currentMessage()
    # Reset settings forgets it: the next start works
    w.reset_action.trigger()
    assert remembered_options(settings) == (ViewerOptions(), set())
    assert w.options.tracker == ""


def test_library_errors_are_blamed_on_remembered_values():
    opts = ViewerOptions(detector="rtmdet-q")
    msg = blame_remembered("detect.model: unknown detector 'rtmdet-q'", opts, {"detector"})
    assert msg.startswith("remembered setting detector=rtmdet-q: detect.model")
    assert blame_remembered("something else", opts, {"detector"}) == "something else"
    assert blame_remembered("detector 'rtmdet-q'", opts, set()) == "detector 'rtmdet-q'"


def test_launch_options_win_and_are_not_remembered(run_viewer, child_settings, tmp_path, data_dir):
    save_options(ViewerOptions(model="hrnet-w32-coco-256x192", det_every=3), child_settings)
    (tmp_path / "dets.txt").write_text((data_dir / "mot15/PETS09-S2L1/gt/gt.txt").read_text())
    shot = tmp_path / "shot.png"
    done = run_viewer(str(data_dir / "opencv_samples/vtest.avi"), "--pose", "none", "--detections", "dets.txt",
                      "--quit-after", "2", "--screenshot", str(shot), cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr  # the remembered HRNet was not used (its weights are not here)
    assert shot.exists()
    child_settings.sync()
    opts, _ = remembered_options(child_settings)
    assert opts.model == "hrnet-w32-coco-256x192" and opts.det_every == 3  # still the remembered ones
    assert opts.detections == ""  # the launch's detections file was for this launch only


def test_changed_settings_are_remembered_absolute(make_window, settings, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    w = make_window(ViewerOptions(), cli=set())
    w._changed(ViewerOptions(tracker="rel/trk.yaml", show_trails=False))
    opts, remembered = remembered_options(settings)
    assert opts.tracker == os.path.join(str(tmp_path), "rel", "trk.yaml") and not opts.show_trails
    assert {"tracker", "show_trails"} <= remembered

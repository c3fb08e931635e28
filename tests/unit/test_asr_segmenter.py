"""The pure speech segmenter on synthetic probability sequences (32 ms chunks at 16 kHz)."""

from __future__ import annotations

import itertools

from gpu_service.vad import (
    SegmentDiscarded,
    SegmentEnded,
    SegmenterOptions,
    SegmentEvent,
    SegmentStarted,
    SpeechSegmenter,
)

CHUNK = 512


def run(probs: list[float], opts: SegmenterOptions | None = None, flush: bool = True):
    seg = SpeechSegmenter(opts)
    events: list[SegmentEvent] = []
    for p in probs:
        events += seg.push(p)
    if flush:
        events += seg.flush()
    return seg, events


def chunks(ms: float) -> int:
    return round(ms / 32)


def test_asr_silence_only_gives_nothing() -> None:
    seg, events = run([0.01] * 100)
    assert events == [] and not seg.in_speech


def test_asr_one_utterance_with_pre_and_post_roll() -> None:
    probs = [0.0] * 20 + [0.9] * 30 + [0.05] * 30
    _, events = run(probs)
    assert events[0] == SegmentStarted(20 * CHUNK - 4000)  # 250 ms pre-roll
    end = events[1]
    assert isinstance(end, SegmentEnded) and end.reason == "silence"
    assert end.start == 20 * CHUNK - 4000
    assert end.end == 50 * CHUNK + 3200  # last voiced chunk + 200 ms post-roll
    assert len(events) == 2


def test_asr_segment_ends_only_after_min_silence() -> None:
    opts = SegmenterOptions()
    need = -(-opts.samples(opts.min_silence_ms) // CHUNK)  # chunks of silence to end
    seg, events = run([0.9] * 10 + [0.1] * (need - 1), flush=False)
    assert seg.in_speech and len(events) == 1
    events = seg.push(0.1)
    assert len(events) == 1 and isinstance(events[0], SegmentEnded)


def test_asr_hysteresis_between_thresholds_keeps_speech() -> None:
    # 0.4 is below threshold but above neg_threshold: neither starts nor ends silence.
    seg, events = run([0.9] * 10 + [0.4] * 40, flush=False)
    assert seg.in_speech and events == [SegmentStarted(0)]
    # ... and it does not start a segment from idle.
    seg2, events2 = run([0.4] * 40, flush=False)
    assert events2 == [] and not seg2.in_speech


def test_asr_short_pause_does_not_split() -> None:
    probs = [0.9] * 20 + [0.1] * chunks(300) + [0.9] * 20 + [0.0] * 30
    _, events = run(probs)
    ended = [e for e in events if isinstance(e, SegmentEnded)]
    assert len(ended) == 1


def test_asr_long_pause_splits_and_pre_roll_never_overlaps() -> None:
    probs = [0.9] * 20 + [0.1] * chunks(700) + [0.9] * 20 + [0.0] * 30
    _, events = run(probs)
    ended = [e for e in events if isinstance(e, SegmentEnded)]
    assert len(ended) == 2
    assert ended[1].start >= ended[0].end


def test_asr_blip_shorter_than_min_speech_is_discarded() -> None:
    _, events = run([0.0] * 10 + [0.9] * 3 + [0.0] * 40)  # 96 ms of "speech"
    assert isinstance(events[-1], SegmentDiscarded)
    assert not any(isinstance(e, SegmentEnded) for e in events)


def test_asr_max_length_forces_a_cut_at_a_pause() -> None:
    opts = SegmenterOptions(max_segment_s=3.0)
    # 2 s speech, 160 ms pause (below min_silence), then speech on and on.
    probs = [0.9] * chunks(2000) + [0.1] * 5 + [0.9] * chunks(2500)
    _, events = run(probs, opts)
    ended = [e for e in events if isinstance(e, SegmentEnded)]
    assert ended[0].reason == "max_length"
    pause_start = chunks(2000) * CHUNK
    assert pause_start < ended[0].end < pause_start + 5 * CHUNK  # cut inside the pause
    assert ended[0].end - ended[0].start <= 3 * 16000
    # The next segment starts exactly at the cut: no audio lost or repeated.
    assert ended[1].start == ended[0].end
    assert ended[1].reason == "flush"


def test_asr_max_length_without_pause_cuts_hard() -> None:
    opts = SegmenterOptions(max_segment_s=2.0)
    _, events = run([0.9] * chunks(5000), opts)
    ended = [e for e in events if isinstance(e, SegmentEnded)]
    assert [e.reason for e in ended] == ["max_length", "max_length", "flush"]
    assert all(e.end - e.start <= 2 * 16000 + CHUNK for e in ended)
    assert all(b.start == a.end for a, b in itertools.pairwise(ended))


def test_asr_flush_mid_speech_ends_segment() -> None:
    seg, _events = run([0.9] * 20, flush=False)
    assert seg.in_speech
    out = seg.flush()
    assert len(out) == 1 and isinstance(out[0], SegmentEnded) and out[0].reason == "flush"
    assert out[0].end == 20 * CHUNK
    assert seg.flush() == []


def test_asr_skip_advances_timeline() -> None:
    seg, _ = run([0.0] * 5)
    seg.skip(16000)
    events = seg.push(0.9)
    assert isinstance(events[0], SegmentStarted)
    assert events[0].start == 5 * CHUNK + 16000  # pre-roll never reaches back over a gap

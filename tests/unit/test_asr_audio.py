"""Audio helpers: resampling, Opus round trip, streaming VAD, the hallucination filter and
the transcript JSON splice."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
from aiortc.rtp import RtpPacket

from devstack.rtp_tools import encode_opus, load_wav, opus_rtp_packets
from gpu_service.delivery import split_around_seq
from gpu_service.opus_decode import OpusStreamDecoder, resample_to_16k
from gpu_service.transcriber import TranscribeOptions, keep_segment
from gpu_service.vad import StreamingSileroVad
from voxrelay.protocol import Final


def tone(freq: float, rate: int, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amp * 32767 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def dominant_freq(x: np.ndarray, rate: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spec) * rate / len(x))


def test_asr_resample_48k_to_16k_keeps_length_and_pitch() -> None:
    out = resample_to_16k(tone(440, 48_000, 1.0), 48_000)
    assert out.dtype == np.float32 and abs(len(out) - 16_000) <= 32
    assert abs(dominant_freq(out, 16_000) - 440) < 3
    assert 0.4 < np.abs(out).max() <= 1.0


def test_asr_opus_round_trip_through_rtp() -> None:
    pcm = tone(300, 16_000, 1.0)
    packets = opus_rtp_packets(encode_opus(pcm, 16_000))
    assert 50 <= len(packets) <= 52  # 20 ms each
    dec = OpusStreamDecoder()
    audio, ticks = [], 0
    for raw in packets:
        a, t = dec.decode(RtpPacket.parse(raw).payload)
        audio.append(a)
        ticks += t
    out = np.concatenate(audio)
    assert ticks == len(packets) * 960
    assert abs(len(out) - ticks // 3) <= 32
    assert abs(dominant_freq(out[1600:14400], 16_000) - 300) < 3


def test_asr_silence_covers_rtp_ticks() -> None:
    assert len(OpusStreamDecoder.silence(960)) == 320
    assert len(OpusStreamDecoder.silence(-5)) == 0


def test_asr_streaming_vad_matches_batch_vad_and_carries_state(speech_dir) -> None:
    from faster_whisper.vad import get_vad_model

    pcm, _ = load_wav(speech_dir / "A01_jfk.wav")
    audio = pcm.astype(np.float32) / 32768
    n = len(audio) // 512 * 512
    batch = get_vad_model()(audio[:n]).reshape(-1)
    vad = StreamingSileroVad()
    # Packet-sized pieces (20 ms) that do not line up with 512-sample chunks.
    streamed = np.concatenate([vad(audio[i : i + 320]) for i in range(0, n, 320)])
    assert len(streamed) == len(batch)
    assert np.allclose(streamed, batch, atol=1e-4)
    assert batch.max() > 0.9 and batch.min() < 0.1


def _seg(text: str, no_speech: float, logprob: float, ratio: float = 1.2) -> SimpleNamespace:
    return SimpleNamespace(
        text=text, no_speech_prob=no_speech, avg_logprob=logprob, compression_ratio=ratio
    )


def test_asr_hallucination_filter() -> None:
    o = TranscribeOptions()
    assert keep_segment(_seg(" Ask not.", 0.01, -0.2), o)
    assert not keep_segment(_seg(" Thanks for watching!", 0.8, -1.2), o)
    assert keep_segment(_seg(" quiet but sure", 0.8, -0.3), o)  # confident words stay
    assert not keep_segment(_seg(" garbage", 0.1, -2.5), o)
    assert not keep_segment(_seg(" la la la la", 0.1, -0.3, ratio=3.0), o)
    assert not keep_segment(_seg("   ", 0.0, -0.1), o)


def test_asr_final_json_splice_keeps_wire_format() -> None:
    draft = Final(
        session_id="abcdefgh", seq=1, segment_id="u-1", text='say "seq":9 ünïcode',
        start_s=0.25, end_s=1.5,
    )  # fmt: skip
    head, tail = split_around_seq(draft)
    spliced = Final.model_validate_json(head + "42" + tail)
    assert spliced == draft.model_copy(update={"seq": 42})
    assert json.loads(head + "7" + tail)["seq"] == 7

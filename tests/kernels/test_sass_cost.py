"""The SASS cost model and the JIT-specialization rules of the AOT specs, on listings and
values written by hand (no compiler needed)."""
from __future__ import annotations

import pytest

pytest.importorskip("triton")

# A program: 2 instructions, a call to a 3-instruction subroutine, a 4-instruction loop
# (MMA, MUFU, load, back-branch), a reduction and EXIT; then the trap loop and the subroutine.
LISTING = """
        /*0000*/                   S2R R0, SR_TID.X ;                        /* 0x0000000000007919 */
        /*0010*/                   CALL.REL.NOINC 0x100 ;                    /* 0x0000000000007944 */
        /*0020*/                   HMMA.1688.F32.TF32 R4, R8, R12, R4 ;      /* 0x0000000000007947 */
        /*0030*/                   MUFU.EX2 R1, R2 ;                         /* 0x0000000000007947 */
        /*0040*/                   LDG.E R3, desc[UR4][R2.64] ;              /* 0x0000000000007947 */
        /*0050*/               @P0 BRA 0x20 ;                                /* 0x0000000000007947 */
        /*0060*/                   REDG.E.ADD.F32.FTZ.RN.STRONG.GPU desc[UR4][R2.64], R5 ;
        /*0065*/                   NOP ;
        /*0070*/                   EXIT ;                                    /* 0x000000000000794d */
        /*0080*/                   BRA 0x80 ;                                /* 0x0000000000007947 */
        /*0100*/                   IMAD R1, R2, R3, R4 ;                     /* 0x0000000000007947 */
        /*0110*/                   IADD3 R1, R1, 0x1, RZ ;                   /* 0x0000000000007947 */
        /*0120*/                   RET.REL.NODEC R20 0x0 ;                   /* 0x0000000000007947 */
"""


def test_per_point_weights_loop_body_and_calls():
    from tri3d.kernels.sass_cost import per_point

    cost = per_point(LISTING, num_warps=4, points_per_block=16, blocks_per_program=10)
    once, per_iter = 4 / (16 * 10), 4 / 16  # warp-instructions per point of one issue
    # outside the loop: S2R, CALL + IMAD, IADD3, RET, REDG, EXIT; inside: 4 per block
    assert cost["total"] == pytest.approx(7 * once + 4 * per_iter)
    assert cost["mma"] == pytest.approx(per_iter) and cost["mufu"] == pytest.approx(per_iter)
    assert cost["global load"] == pytest.approx(per_iter) and cost["reduction"] == pytest.approx(once)
    assert cost["control"] == pytest.approx(3 * once + per_iter)  # CALL, RET, EXIT; the loop's BRA
    assert cost["alu"] == pytest.approx(3 * once)  # S2R, IMAD, IADD3
    assert cost["mma_flops"] == pytest.approx(per_iter * 2 * 16 * 8 * 8)
    straight = per_point(LISTING, num_warps=4, points_per_block=16)  # one block per program
    assert straight["total"] == pytest.approx(11 * 4 / 16)


def test_local_memory_is_its_own_class():
    from tri3d.kernels.sass_cost import parse_sass

    listing = """
        /*0000*/                   LDL R1, [R1+0x4] ;                        /* 0x0000000000007983 */
        /*0010*/                   STL [R1], R2 ;                            /* 0x0000000000007387 */
        /*0020*/                   LDG.E R3, desc[UR4][R2.64] ;              /* 0x0000000000007981 */
"""
    assert [ins.kind for ins in parse_sass(listing)] == ["local", "local", "global load"]


def test_two_loops_are_refused():
    from tri3d.kernels.sass_cost import per_point

    second = LISTING.replace("/*0060*/                   REDG", "/*0060*/               @P1 BRA 0x0 ; REDG")
    with pytest.raises(ValueError, match="at most one loop"):
        per_point(second, num_warps=4, points_per_block=16)


# A ray: 1 setup instruction, an outer loop over samples (2 instructions, an inner loop
# over a lane's channels of 3 instructions, the back branch), a final channel loop of 2
# instructions, EXIT.
NESTED = """
        /*0000*/                   S2R R0, SR_TID.X ;
        /*0010*/                   MUFU.EX2 R1, R2 ;
        /*0020*/                   FMUL R1, R1, R2 ;
        /*0030*/                   LDG.E R3, desc[UR4][R2.64] ;
        /*0040*/                   FFMA R4, R3, R1, R4 ;
        /*0050*/               @P0 BRA 0x30 ;
        /*0060*/               @P1 BRA 0x10 ;
        /*0070*/                   STG.E desc[UR4][R2.64], R4 ;
        /*0080*/               @P0 BRA 0x70 ;
        /*0090*/                   EXIT ;
"""


def test_per_item_multiplies_the_trips_of_nested_loops():
    from tri3d.kernels.sass_cost import loop_counts, loop_sizes, per_item

    assert loop_sizes(NESTED) == [3, 6, 2]  # inner, outer (inner included), final
    assert [row["mufu"] for row in loop_counts(NESTED)] == [0, 1, 0]
    samples, per_lane = 96, 2
    cost = per_item(NESTED, warps=1, items=samples, trips=[per_lane, samples, per_lane])
    # setup + EXIT once; outer 3 per sample (MUFU, FMUL, BRA); inner 3 per sample per channel; final 2 per channel
    assert cost["total"] * samples == pytest.approx(2 + samples * (3 + 3 * per_lane) + 2 * per_lane)
    assert cost["mufu"] == pytest.approx(1.0) and cost["global load"] == pytest.approx(per_lane)
    assert cost["global store"] * samples == pytest.approx(per_lane)
    with pytest.raises(ValueError, match="3 loops"):
        per_item(NESTED, warps=1, items=samples, trips=[per_lane, samples])

def test_mma_shapes_and_occupancy():
    from tri3d.kernels.sass_cost import H100, issue_bound_seconds, mma_flops, warps_per_sm

    assert mma_flops("HMMA.16816.F32.BF16") == 2 * 16 * 8 * 16
    assert mma_flops("HGMMA.64x32x8.F32.TF32") == 2 * 64 * 32 * 8 // 4
    assert mma_flops("FFMA") == 0
    assert warps_per_sm(128, 24576, 4) == 16  # registers: 4096 per warp -> 4 CTAs of 4 warps
    assert warps_per_sm(214, 100, 8) == 8  # 6912 registers per warp: one CTA of 8 warps
    assert warps_per_sm(32, 200_000, 4) == 4  # shared memory: one CTA
    assert warps_per_sm(16, 0, 4) == 64
    clocks = H100["sms"] * H100["schedulers"] * H100["clock_hz"]
    assert issue_bound_seconds(clocks) == pytest.approx(1.0)


def test_warpgroup_mma_is_parsed_with_its_shape():
    """sm_90's wgmma: the listing's opcode keeps its lower-case shape, so its flops count."""
    from tri3d.kernels.sass_cost import parse_sass, per_point

    line = "        /*5d70*/                   HGMMA.64x64x8.F32.TF32 R56, R24, gdesc[UR4], R56 ;   /* 0x04e0 */\n"
    exit_ = "        /*5d80*/                   EXIT ;                                    /* 0x0000 */\n"
    assert [i.opcode for i in parse_sass(line + exit_)] == ["HGMMA.64x64x8.F32.TF32", "EXIT"]
    cost = per_point(line + exit_, num_warps=4, points_per_block=64)  # one warpgroup, 64 points
    assert cost["mma"] == pytest.approx(4 / 64) and cost["mma_flops"] == pytest.approx(2 * 64 * 8)


def test_launch_spec_follows_the_jit_rules():
    import triton
    import triton.language as tl

    from tri3d.kernels.aot import launch_spec

    @triton.jit
    def kernel(x_ptr, n, one, big, odd, scale, BLOCK: tl.constexpr):
        pass

    spec = launch_spec("k", kernel, dict(x_ptr="bf16", n=4096, one=1, big=2**31, odd=33, scale=0.5, BLOCK=64), 4)
    assert spec.pointers == {"x_ptr": "bf16"}
    assert spec.scalars == {"n": "i32", "big": "i64", "odd": "i32", "scale": "fp32"}
    assert spec.constexprs == {"one": 1, "BLOCK": 64}
    assert spec.divisible_by_16 == ("n", "big")
    with pytest.raises(ValueError, match="odd"):
        launch_spec("k", kernel, dict(x_ptr="bf16", n=1, one=1, big=1, scale=0.5, BLOCK=64), 4)

"""The benchmark's JVM profile summary (benchmarks/jvm_profile.py): pure logic over the
text `jfr print` writes, no JVM."""

from __future__ import annotations

from benchmarks.jvm_profile import DRIVER, PHASES, phase_of, samples, summarise

SORT, WINDOW, READ, SCAN, MAP, ARROW = (phase for phase, _ in PHASES[:6])


def _event(thread: str, *frames: str) -> str:
    lines = "\n".join(f"    {f}  line: 12" if "Generated" not in f else f"    {f}" for f in frames)
    return (
        "jdk.ExecutionSample {\n"
        "  startTime = 12:40:33.320 (2026-11-22)\n"
        f'  sampledThread = "{thread}" (javaThreadId = 65)\n'
        '  state = "STATE_RUNNABLE"\n'
        "  stackTrace = [\n"
        f"{lines}\n"
        "  ]\n"
        "}\n"
    )


# Real shapes from a recording of the point-in-time join (innermost frame first).
_SORT = (
    "org.apache.spark.sql.catalyst.expressions.BaseOrdering.compare(Object, Object)",
    "org.apache.spark.util.collection.TimSort$SortState.mergeLo(TimSort$SortState, int)",
    "org.apache.spark.sql.execution.UnsafeExternalRowSorter.sort()",
    "org.apache.spark.sql.execution.window.WindowEvaluatorFactory$X.fetchNextRow()",
    "org.apache.spark.sql.execution.arrow.ArrowConverters$ArrowBatchIterator.next()",
    "org.apache.spark.executor.Executor$TaskRunner.run()",
)
_READ_INTO_SORT = (
    "java.io.DataInputStream.readInt()",
    "org.apache.spark.sql.execution.UnsafeRowSerializerInstance$$anon$2$$anon$3.readSize()",
    "org.apache.spark.sql.catalyst.expressions.GeneratedClass$GeneratedIteratorForCodegenStage3"
    ".processNext()",
    "org.apache.spark.sql.execution.UnsafeExternalRowSorter.insertRow(UnsafeRow)",
    "org.apache.spark.executor.Executor$TaskRunner.run()",
)
_MAP = (
    "org.apache.spark.sql.catalyst.expressions.GeneratedClass$GeneratedIteratorForCodegenStage1"
    ".processNext()",
    "org.apache.spark.sql.execution.BufferedRowIterator.hasNext()",
    "org.apache.spark.shuffle.sort.BypassMergeSortShuffleWriter.write(Iterator)",
    "org.apache.spark.executor.Executor$TaskRunner.run()",
)
_SCAN = (
    "org.apache.spark.sql.execution.datasources.parquet.VectorizedRleValuesReader.readBatch()",
    "org.apache.spark.sql.execution.BufferedRowIterator.hasNext()",
    "org.apache.spark.shuffle.sort.BypassMergeSortShuffleWriter.write(Iterator)",
)
_WINDOW = (
    "org.apache.spark.sql.execution.window.AggregateProcessor.update(InternalRow)",
    "org.apache.spark.sql.execution.arrow.ArrowConverters$ArrowBatchIterator.next()",
)
_DRIVER = ("py4j.GatewayConnection.run()", "java.lang.Thread.run()")


def test_each_sample_counts_for_its_innermost_phase() -> None:
    assert phase_of(list(_SORT)) == SORT  # inside the window, inside the Arrow result
    assert phase_of(list(_READ_INTO_SORT)) == READ  # reading the rows the sort takes in
    assert phase_of(list(_MAP)) == MAP  # generated code counts for its operator
    assert phase_of(list(_SCAN)) == SCAN
    assert phase_of(list(_WINDOW)) == WINDOW
    assert phase_of(list(_DRIVER)) == DRIVER
    arrow = ["org.apache.arrow.vector.BaseFixedWidthVector.setSafe(int)", *_WINDOW[1:]]
    assert phase_of(arrow) == ARROW


def test_jfr_text_is_parsed_into_stacks_and_summarised() -> None:
    text = (
        "\n".join(_event("Executor task launch worker-0", *_SORT) for _ in range(3))
        + _event("Executor task launch worker-1", *_MAP)
        + _event("Thread-3", *_DRIVER)
        + "jdk.ExecutionSample {\n  stackTrace = [\n  ]\n}\n"  # no frames: not a sample
    )
    stacks = samples(text)
    assert [len(s) for s in stacks] == [6, 6, 6, 4, 2]  # generated frames (no line) kept
    assert stacks[3][0].endswith("GeneratedIteratorForCodegenStage1.processNext")
    summary = summarise(stacks, top=2)
    assert summary["samples"] == 5
    assert summary["phases"] == [
        {"phase": SORT, "share": 0.6},
        {"phase": MAP, "share": 0.2},
        {"phase": DRIVER, "share": 0.2},
    ]
    assert summary["top_frames"][0] == {
        "frame": "org.apache.spark.sql.catalyst.expressions.BaseOrdering.compare",
        "share": 0.6,
    }
    assert len(summary["top_frames"]) == 2

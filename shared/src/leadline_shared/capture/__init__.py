"""What the collector captures, turned into raw events: the builders the collector and the enricher share.

The collector builds most events as it answers; the enricher builds the events of a batch the collector
published whole (docs/proposals/batch-records.md). One builder, so a message becomes the same event whichever
service builds it.
"""

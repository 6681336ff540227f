"""SentencePiece's `ModelProto` message classes, built from a vendored descriptor in a private pool.

The `.model` format is the protobuf message `sentencepiece.ModelProto` (sentencepiece_model.proto).
sentencepiece ships generated code for it (`sentencepiece.sentencepiece_model_pb2`), but that code
refuses a protobuf runtime other than the one it was generated for (0.2.3's: 7.x from 7.36.1),
which excludes the protobuf that ortools pins (6.33.x). So the message classes are built here
instead, by `message_factory.GetMessageClass`, from the file's serialized FileDescriptorProto added
to a `descriptor_pool.DescriptorPool` of our own: no version check, and no collision with a
`sentencepiece.ModelProto` that other code may register in protobuf's default pool. Parsing and
serialising are protobuf's own, so bytes round-trip as with the generated code.

`DESCRIPTOR_BYTES` provenance: the argument of `AddSerializedFile` in sentencepiece 0.2.3's
`sentencepiece/sentencepiece_model_pb2.py` (generated from sentencepiece_model.proto by protoc for
protobuf Python 7.36.1), copied verbatim and base64-encoded: 2,363 bytes, sha256
0eeafbe04d067a59174ee27c7222a1d6abcf000066535c7b7dae405eba7cf366. Not `DESCRIPTOR.serialized_pb`
of the imported module: protobuf's pool re-serialises it with a float default rewritten
(0.9995 -> 0.999499977).
"""

from __future__ import annotations

import base64

from google.protobuf import descriptor_pool, message_factory

DESCRIPTOR_BYTES = base64.b64decode(
    "ChlzZW50ZW5jZXBpZWNlX21vZGVsLnByb3RvEg1zZW50ZW5jZXBpZWNlIuQMCgtUcmFpbmVyU3BlYxINCgVpbnB1dBgBIAMo"
    "CRIUCgxpbnB1dF9mb3JtYXQYByABKAkSFAoMbW9kZWxfcHJlZml4GAIgASgJEkEKCm1vZGVsX3R5cGUYAyABKA4yJC5zZW50"
    "ZW5jZXBpZWNlLlRyYWluZXJTcGVjLk1vZGVsVHlwZToHVU5JR1JBTRIYCgp2b2NhYl9zaXplGAQgASgFOgQ4MDAwEiIKEmNo"
    "YXJhY3Rlcl9jb3ZlcmFnZRgKIAEoAjoGMC45OTk1Eh4KE2lucHV0X3NlbnRlbmNlX3NpemUYCyABKAQ6ATASJAoWc2h1ZmZs"
    "ZV9pbnB1dF9zZW50ZW5jZRgTIAEoCDoEdHJ1ZRIoChdzZWVkX3NlbnRlbmNlcGllY2Vfc2l6ZRgOIAEoBToHMTAwMDAwMBIe"
    "ChBzaHJpbmtpbmdfZmFjdG9yGA8gASgCOgQwLjc1EiEKE21heF9zZW50ZW5jZV9sZW5ndGgYEiABKAU6BDQxOTISFwoLbnVt"
    "X3RocmVhZHMYECABKAU6AjE2Eh0KEm51bV9zdWJfaXRlcmF0aW9ucxgRIAEoBToBMhIkChhtYXhfc2VudGVuY2VwaWVjZV9s"
    "ZW5ndGgYFCABKAU6AjE2EiUKF3NwbGl0X2J5X3VuaWNvZGVfc2NyaXB0GBUgASgIOgR0cnVlEh0KD3NwbGl0X2J5X251bWJl"
    "chgXIAEoCDoEdHJ1ZRIhChNzcGxpdF9ieV93aGl0ZXNwYWNlGBYgASgIOgR0cnVlEikKGnRyZWF0X3doaXRlc3BhY2VfYXNf"
    "c3VmZml4GBggASgIOgVmYWxzZRIrChxhbGxvd193aGl0ZXNwYWNlX29ubHlfcGllY2VzGBogASgIOgVmYWxzZRIbCgxzcGxp"
    "dF9kaWdpdHMYGSABKAg6BWZhbHNlEiMKGXByZXRva2VuaXphdGlvbl9kZWxpbWl0ZXIYNSABKAk6ABIXCg9jb250cm9sX3N5"
    "bWJvbHMYHiADKAkSHAoUdXNlcl9kZWZpbmVkX3N5bWJvbHMYHyADKAkSFgoOcmVxdWlyZWRfY2hhcnMYJCABKAkSHAoNYnl0"
    "ZV9mYWxsYmFjaxgjIAEoCDoFZmFsc2USKwoddm9jYWJ1bGFyeV9vdXRwdXRfcGllY2Vfc2NvcmUYICABKAg6BHRydWUSHgoQ"
    "aGFyZF92b2NhYl9saW1pdBghIAEoCDoEdHJ1ZRIcCg11c2VfYWxsX3ZvY2FiGCIgASgIOgVmYWxzZRIRCgZ1bmtfaWQYKCAB"
    "KAU6ATASEQoGYm9zX2lkGCkgASgFOgExEhEKBmVvc19pZBgqIAEoBToBMhISCgZwYWRfaWQYKyABKAU6Ai0xEhgKCXVua19w"
    "aWVjZRgtIAEoCToFPHVuaz4SFgoJYm9zX3BpZWNlGC4gASgJOgM8cz4SFwoJZW9zX3BpZWNlGC8gASgJOgQ8L3M+EhgKCXBh"
    "ZF9waWVjZRgwIAEoCToFPHBhZD4SGgoLdW5rX3N1cmZhY2UYLCABKAk6BSDigYcgEiIKGHNlZWRfc2VudGVuY2VwaWVjZXNf"
    "ZmlsZRg2IAEoCToAEiYKF2F1dG9fY2hhcmFjdGVyX2NvdmVyYWdlGDcgASgIOgVmYWxzZRIbCg9hY2NlcHRfbGFuZ3VhZ2UY"
    "BSADKAlCAhgBEiQKFXNlbGZfdGVzdF9zYW1wbGVfc2l6ZRgGIAEoBToBMEICGAESIAoUbWluaW5nX3NlbnRlbmNlX3NpemUY"
    "DCABKAVCAhgBEiIKFnRyYWluaW5nX3NlbnRlbmNlX3NpemUYDSABKAVCAhgBEi8KHHRyYWluX2V4dHJlbWVseV9sYXJnZV9j"
    "b3JwdXMYMSABKAg6BWZhbHNlQgIYARIuChtlbmFibGVfZGlmZmVyZW50aWFsX3ByaXZhY3kYMiABKAg6BWZhbHNlQgIYARIv"
    "CiBkaWZmZXJlbnRpYWxfcHJpdmFjeV9ub2lzZV9sZXZlbBgzIAEoAjoBMEICGAESNgonZGlmZmVyZW50aWFsX3ByaXZhY3lf"
    "Y2xpcHBpbmdfdGhyZXNob2xkGDQgASgEOgEwQgIYASI1CglNb2RlbFR5cGUSCwoHVU5JR1JBTRABEgcKA0JQRRACEggKBFdP"
    "UkQQAxIICgRDSEFSEAQqCQjIARCAgICAAiLRAQoOTm9ybWFsaXplclNwZWMSDAoEbmFtZRgBIAEoCRIcChRwcmVjb21waWxl"
    "ZF9jaGFyc21hcBgCIAEoDBIeChBhZGRfZHVtbXlfcHJlZml4GAMgASgIOgR0cnVlEiYKGHJlbW92ZV9leHRyYV93aGl0ZXNw"
    "YWNlcxgEIAEoCDoEdHJ1ZRIgChJlc2NhcGVfd2hpdGVzcGFjZXMYBSABKAg6BHRydWUSHgoWbm9ybWFsaXphdGlvbl9ydWxl"
    "X3RzdhgGIAEoCSoJCMgBEICAgIACIs8DCgpNb2RlbFByb3RvEjcKBnBpZWNlcxgBIAMoCzInLnNlbnRlbmNlcGllY2UuTW9k"
    "ZWxQcm90by5TZW50ZW5jZVBpZWNlEjAKDHRyYWluZXJfc3BlYxgCIAEoCzIaLnNlbnRlbmNlcGllY2UuVHJhaW5lclNwZWMS"
    "NgoPbm9ybWFsaXplcl9zcGVjGAMgASgLMh0uc2VudGVuY2VwaWVjZS5Ob3JtYWxpemVyU3BlYxI4ChFkZW5vcm1hbGl6ZXJf"
    "c3BlYxgFIAEoCzIdLnNlbnRlbmNlcGllY2UuTm9ybWFsaXplclNwZWMa0gEKDVNlbnRlbmNlUGllY2USDQoFcGllY2UYASAB"
    "KAkSDQoFc2NvcmUYAiABKAISQgoEdHlwZRgDIAEoDjIsLnNlbnRlbmNlcGllY2UuTW9kZWxQcm90by5TZW50ZW5jZVBpZWNl"
    "LlR5cGU6Bk5PUk1BTCJUCgRUeXBlEgoKBk5PUk1BTBABEgsKB1VOS05PV04QAhILCgdDT05UUk9MEAMSEAoMVVNFUl9ERUZJ"
    "TkVEEAQSCAoEQllURRAGEgoKBlVOVVNFRBAFKgkIyAEQgICAgAIqCQjIARCAgICAAkoECAQQBUICSAM="
)

_POOL = descriptor_pool.DescriptorPool()
_POOL.AddSerializedFile(DESCRIPTOR_BYTES)

ModelProto = message_factory.GetMessageClass(_POOL.FindMessageTypeByName("sentencepiece.ModelProto"))

-- Up Migration
-- Chunked loads from a local staging table: each chunk is a range of the table's heap blocks
-- [ctid_from_block, ctid_to_block), read with a TID range scan; a resume continues at the last
-- chunk's ctid_to_block. NULL for chunks of a file (their range is start_offset..end_offset).
ALTER TABLE adaptive_load.load_chunks
    ADD COLUMN IF NOT EXISTS ctid_from_block bigint,
    ADD COLUMN IF NOT EXISTS ctid_to_block bigint;
COMMENT ON COLUMN adaptive_load.load_chunks.ctid_from_block IS
  'Chunk of a staging table: the first heap block it read (ctid >= (from,0)); NULL for a file.';
COMMENT ON COLUMN adaptive_load.load_chunks.ctid_to_block IS
  'Chunk of a staging table: the block after the last it read (ctid < (to,0)); NULL for a file.';

-- Down Migration
ALTER TABLE adaptive_load.load_chunks DROP COLUMN ctid_from_block, DROP COLUMN ctid_to_block;

/**
 * The typed search-attribute keys, defined once for the interpreter (which
 * upserts them) and the client (which sets them at start and filters on them).
 * Their wire names are in {@link SEARCH_ATTRIBUTES}.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { SEARCH_ATTRIBUTES, SEARCHABLE_METADATA_PREFIX } from './terminology';

export const SA = {
  definition: defineSearchAttributeKey(SEARCH_ATTRIBUTES.definition, SearchAttributeType.KEYWORD),
  version: defineSearchAttributeKey(SEARCH_ATTRIBUTES.version, SearchAttributeType.KEYWORD),
  tenant: defineSearchAttributeKey(SEARCH_ATTRIBUTES.tenant, SearchAttributeType.KEYWORD),
  status: defineSearchAttributeKey(SEARCH_ATTRIBUTES.status, SearchAttributeType.KEYWORD),
  stallReason: defineSearchAttributeKey(SEARCH_ATTRIBUTES.stallReason, SearchAttributeType.KEYWORD),
  currentStep: defineSearchAttributeKey(SEARCH_ATTRIBUTES.currentStep, SearchAttributeType.KEYWORD),
};

/** The Keyword attribute of a searchable metadata key (validated by the config that declares it). */
export function metadataAttribute(key: string) {
  return defineSearchAttributeKey(`${SEARCHABLE_METADATA_PREFIX}${key}`, SearchAttributeType.KEYWORD);
}

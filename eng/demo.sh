#!/usr/bin/env bash
# The main job end to end: publish samples/HelloWeb into a bundle and run it.
# Not available yet: the PublishRuncBundle flag is built by issue 5.
echo "eng/demo.sh: the publish flag (PublishRuncBundle) is not implemented yet; see README 'Status'." >&2
exit 1

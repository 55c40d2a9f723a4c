"""Planning: which items go in which session (kind, offline mode, size)."""
from .. import batch as batch_package
from .items import BATCH, MAX_INVOICES_PER_SESSION, ONLINE, Plan, SessionPlan

_ZIP_OVERHEAD_PER_FILE = 200          # local header + central directory + deflate slack, bytes


def _chunks(items, count):
    """Split ``items`` into ``count`` nearly equal consecutive chunks."""
    size, extra = divmod(len(items), count)
    chunks, start = [], 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        chunks.append(items[start:end])
        start = end
    return [c for c in chunks if c]


def _batch_chunks(items, max_invoices, budget):
    """Consecutive groups of at most ``max_invoices`` items and ``budget`` estimated ZIP bytes."""
    groups, current, size = [], [], 0
    for item in items:
        cost = len(item.xml_bytes) + _ZIP_OVERHEAD_PER_FILE
        if cost > budget:
            raise ValueError("item %r (%d bytes) cannot fit in a batch package" % (item.key, len(item.xml_bytes)))
        if current and (len(current) >= max_invoices or size + cost > budget):
            groups.append(current)
            current, size = [], 0
        current.append(item)
        size += cost
    if current:
        groups.append(current)
    # even out the sessions when the split is by count (10,001 -> 5,001 + 5,000, not 10,000 + 1)
    if len(groups) > 1 and all(len(g) <= max_invoices for g in groups):
        total_size = sum(len(i.xml_bytes) + _ZIP_OVERHEAD_PER_FILE for i in items)
        count = len(groups)
        even = _chunks(items, count)
        if all(sum(len(i.xml_bytes) + _ZIP_OVERHEAD_PER_FILE for i in g) <= budget for g in even) \
                and total_size <= budget * count:
            groups = even
    return groups


def plan(items, batch_threshold=10, max_part_size=batch_package.MAX_PART_SIZE,
         max_invoices_per_session=MAX_INVOICES_PER_SESSION, max_parts=batch_package.MAX_PARTS):
    """Split ``items`` into interactive sends and batch sessions.

    * a session never mixes offline and online modes;
    * technical corrections go interactive only (with the offline group);
    * a mode group of at least ``batch_threshold`` items goes in batch sessions of at most
      ``max_invoices_per_session`` invoices whose ZIP fits in ``max_parts`` parts of
      ``max_part_size`` bytes (sizes are estimated on the uncompressed XML, which deflate never
      exceeds by more than the per-file slack counted here);
    * keys and hashes must be unique (two identical XML files are the same invoice).
    """
    items = list(items)
    seen_keys, seen_hashes = set(), set()
    for item in items:
        if item.key in seen_keys:
            raise ValueError("item key %r appears twice" % (item.key,))
        if item.invoice_hash in seen_hashes:
            raise ValueError("item %r has the same XML (hash) as another item" % (item.key,))
        seen_keys.add(item.key)
        seen_hashes.add(item.invoice_hash)
    if not 1 <= max_invoices_per_session <= MAX_INVOICES_PER_SESSION:
        raise ValueError("max_invoices_per_session must be 1..%d" % MAX_INVOICES_PER_SESSION)
    if not 1 <= max_parts <= batch_package.MAX_PARTS or not 1 <= max_part_size <= batch_package.MAX_PART_SIZE:
        raise ValueError("batch parts: at most %d parts of %d bytes"
                         % (batch_package.MAX_PARTS, batch_package.MAX_PART_SIZE))
    budget = min(max_parts * max_part_size, batch_package.MAX_PACKAGE_SIZE)
    sessions = []
    for offline_mode in (True, False):
        group = [i for i in items if i.offline_mode == offline_mode and not i.is_technical_correction]
        corrections = [i for i in items if i.offline_mode == offline_mode and i.is_technical_correction]
        interactive = list(corrections)
        if group and len(group) >= batch_threshold:
            for chunk in _batch_chunks(group, max_invoices_per_session, budget):
                sessions.append(SessionPlan(BATCH, offline_mode, chunk))
        else:
            interactive += group
        if interactive:
            count = -(-len(interactive) // max_invoices_per_session)
            for chunk in _chunks(interactive, count):
                sessions.append(SessionPlan(ONLINE, offline_mode, chunk))
    return Plan(sessions)

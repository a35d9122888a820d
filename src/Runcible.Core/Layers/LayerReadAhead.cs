using System.Formats.Tar;
using System.Runtime.ExceptionServices;
using Runcible.Core.Oci;

namespace Runcible.Core.Layers;

/// <summary>
/// Reads an image's layers ahead of <see cref="RootfsFlattener"/>'s index: each layer on its own
/// thread into its own bounded <see cref="EntryQueue"/>, at most
/// <see cref="FlattenOptions.MaxParallelLayers"/> layers at once, while the calling thread takes their
/// entries strictly in layer order. Decompression, the diff_id hash and tar parsing are most of the
/// index's cost and independent per layer; applying entries to the tree is not, so it stays on one thread.
/// <para>
/// A layer holds its slot from the moment its thread starts until the caller has taken its last entry,
/// and slots are handed out in layer order. So the lowest layer the caller still needs always has a
/// running reader (a later layer's full queue cannot starve it), and at most that many layers are open
/// and queued at once, whatever the number of layers.
/// </para>
/// <para>
/// A layer's error (a coded error, a failed open) is kept by its queue and thrown by <see cref="Entries"/>
/// after the entries read before it, so errors come in the order the sequential pass would meet them.
/// <see cref="Dispose"/> stops every reader (at its next read of the layer, or while it waits for room)
/// and joins it, so no thread reads, and no layer file is open, once it returns.
/// </para>
/// </summary>
internal sealed class LayerReadAhead : IDisposable
{
    private readonly PulledImage _image;
    private readonly FlattenOptions _options;
    private readonly ReadAheadHooks? _hooks;
    private readonly int _slots;
    private readonly CancellationTokenSource _stop = new();
    private readonly EntryQueue[] _queues;
    private readonly List<Thread> _threads = [];

    public LayerReadAhead(PulledImage image, FlattenOptions options, ReadAheadHooks? hooks)
    {
        _image = image;
        _options = options;
        _hooks = hooks;
        _slots = Math.Max(1, options.MaxParallelLayers);
        _queues = new EntryQueue[image.Layers.Count];
        try
        {
            StartUpTo(_slots);
        }
        catch
        {
            // A constructor that throws is never disposed: the readers already started must stop here.
            Dispose();
            throw;
        }
    }

    /// <summary>
    /// Layer <paramref name="index"/>'s entries (with their data sizes) in order, once the layer was
    /// read to its end and its diff_id verified; its error instead, after the entries read before it.
    /// Take the layers in order, each to its end: finishing one starts the next reader waiting for a slot.
    /// </summary>
    public IEnumerable<QueuedEntry> Entries(int index)
    {
        while (_queues[index].TakeAll() is { Count: > 0 } batch)
        {
            foreach (var entry in batch)
            {
                yield return entry;
            }
        }

        StartUpTo(index + 1 + _slots);
    }

    public void Dispose()
    {
        _stop.Cancel();
        foreach (var queue in _queues)
        {
            queue?.Stop();
        }

        foreach (var thread in _threads)
        {
            thread.Join();
        }

        _stop.Dispose();
    }

    private void StartUpTo(int layers)
    {
        for (var index = _threads.Count; index < Math.Min(layers, _queues.Length); index++)
        {
            var queue = _queues[index] = new EntryQueue(_options.MaxQueuedEntries, _options.MaxQueuedBytes);
            var layer = index;
            var thread = new Thread(() => Read(layer, queue)) { IsBackground = true, Name = $"Runcible layer {index + 1}" };
            thread.Start();
            _threads.Add(thread);
        }
    }

    /// <summary>A layer's thread: everything it meets, an open failing included, goes to its queue for the caller to throw.</summary>
    private void Read(int index, EntryQueue queue)
    {
        Exception? error = null;
        try
        {
            using var reader = new LayerReader(_image.Layers[index], index + 1, _image.Reference, _options, _stop.Token);
            while (reader.Next() is { } entry)
            {
                _hooks?.EntryRead?.Invoke(index + 1);

                // The size is read now: TarEntry.Length asks the entry's data stream, which belongs to the reader.
                if (!queue.Add(new QueuedEntry(entry, entry.Length, EntryQueue.EstimateBytes(entry))))
                {
                    throw new OperationCanceledException(_stop.Token);
                }
            }

            reader.VerifyDiffId();
        }
        catch (Exception e)
        {
            error = e;
        }

        // The layer's file is closed before the caller can see its end.
        _hooks?.Ended?.Invoke(index + 1, error);
        queue.End(error);
    }
}

/// <summary>An entry as read, with its data size and an estimate of the memory it holds.</summary>
internal readonly record struct QueuedEntry(TarEntry Entry, long Size, long Bytes);

/// <summary>
/// For tests, called on a layer's reading thread: <see cref="EntryRead"/> after each entry it read
/// (before queueing it), <see cref="Ended"/> when it is done, its file closed (null: read to its end
/// and verified). Must not throw.
/// </summary>
internal sealed record ReadAheadHooks(Action<int>? EntryRead = null, Action<int, Exception?>? Ended = null);

/// <summary>
/// One layer's entries between its reading thread and the index, bounded both in count and in an
/// estimate of the bytes they hold: names, link names and PAX records can each be up to
/// <see cref="FlattenOptions.MaxMetadataBytes"/>, so a count alone (all a bounded Channel or
/// BlockingCollection offers) would let a hostile layer queue gigabytes. The bounds cover what is
/// queued and the batch the consumer took and is still applying; beyond them a producer holds only the
/// one entry it waits to queue. One producer, one consumer.
/// </summary>
internal sealed class EntryQueue(int maxEntries, long maxBytes)
{
    /// <summary>Per entry: the TarEntry, its header and data stream objects, the queue slot.</summary>
    private const int EntryOverhead = 1024;

    private readonly object _lock = new();
    private readonly int _wakeBatch = Math.Clamp(maxEntries, 1, 64);
    private Queue<QueuedEntry> _queued = new();
    private long _queuedBytes;
    private int _heldEntries;
    private long _heldBytes;
    private int _takenEntries;
    private long _takenBytes;
    private bool _ended;
    private Exception? _error;
    private bool _stopped;

    /// <summary>Strings are UTF-16; PAX values that became the name are counted twice, which errs on the safe side.</summary>
    public static long EstimateBytes(TarEntry entry)
    {
        long chars = entry.Name.Length + entry.LinkName.Length;
        if (entry is PosixTarEntry posix)
        {
            chars += posix.UserName.Length + posix.GroupName.Length;
        }

        var records = entry switch
        {
            PaxTarEntry pax => pax.ExtendedAttributes,
            PaxGlobalExtendedAttributesTarEntry global => global.GlobalExtendedAttributes,
            _ => null,
        };
        foreach (var (key, value) in records ?? new Dictionary<string, string>())
        {
            chars += key.Length + value.Length;
        }

        return EntryOverhead + (2 * chars);
    }

    /// <summary>
    /// Queues <paramref name="entry"/> once both bounds leave room for it; when nothing is held it always
    /// goes (an entry over the byte bound on its own could never go otherwise). False once stopped.
    /// </summary>
    public bool Add(QueuedEntry entry)
    {
        lock (_lock)
        {
            while (!_stopped && _heldEntries > 0 && (_heldEntries >= maxEntries || _heldBytes + entry.Bytes > maxBytes))
            {
                // Hand over what is queued before waiting: the consumer may be waiting for a full batch.
                Monitor.PulseAll(_lock);
                Monitor.Wait(_lock);
            }

            if (_stopped)
            {
                return false;
            }

            _queued.Enqueue(entry);
            _queuedBytes += entry.Bytes;
            _heldEntries++;
            _heldBytes += entry.Bytes;

            // Waking the consumer for every entry would cost a context switch each.
            if (_queued.Count >= _wakeBatch)
            {
                Monitor.PulseAll(_lock);
            }

            return true;
        }
    }

    /// <summary>The layer is done: read to its end (<paramref name="error"/> null) or failed.</summary>
    public void End(Exception? error)
    {
        lock (_lock)
        {
            _ended = true;
            _error = error;
            Monitor.PulseAll(_lock);
        }
    }

    /// <summary>The consumer gives up: a producer waiting for room, or about to, stops.</summary>
    public void Stop()
    {
        lock (_lock)
        {
            _stopped = true;
            Monitor.PulseAll(_lock);
        }
    }

    /// <summary>
    /// Everything queued, once the batch taken before has been applied (it stops counting against the
    /// bounds now). Waits when nothing is queued: the producer wakes the consumer for a batch, when it
    /// has to wait itself, and at the end. Empty at the end of a layer read whole; the layer's error at
    /// the end of one that failed.
    /// </summary>
    public Queue<QueuedEntry> TakeAll()
    {
        lock (_lock)
        {
            _heldEntries -= _takenEntries;
            _heldBytes -= _takenBytes;
            Monitor.PulseAll(_lock);
            while (!_ended && _queued.Count == 0)
            {
                Monitor.Wait(_lock);
            }

            var taken = _queued;
            (_takenEntries, _takenBytes) = (taken.Count, _queuedBytes);
            _queued = new Queue<QueuedEntry>();
            _queuedBytes = 0;
            if (taken.Count == 0 && _error is not null)
            {
                ExceptionDispatchInfo.Throw(_error);
            }

            return taken;
        }
    }
}

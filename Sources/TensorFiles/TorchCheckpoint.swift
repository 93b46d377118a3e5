// PyTorch zip checkpoints as written by `torch.save` (torch/serialization.py, `_save`): a zip whose entries live under
// one top-level folder `<prefix>/`: `data.pkl` (the pickled object, with tensors as persistent ids naming storages),
// `data/<key>` (raw storage bytes, stored uncompressed and 64-byte aligned), `byteorder`, `version`, ...
import Foundation

/// Errors specific to PyTorch zip checkpoints (pickle errors surface as `PickleError`, zip errors as `ZipError`).
public enum TorchCheckpointError: Error, CustomStringConvertible, Sendable, Equatable {
    case missingDataPickle
    case multipleDataPickles([String])
    case unsupportedByteOrder(String)
    case notAStateDict(String)
    case duplicateTensorName(String)
    case missingStorage(tensor: String, key: String)
    case storageSizeMismatch(tensor: String, key: String, expected: Int, actual: Int)
    case storageDTypeConflict(key: String)
    case invalidTensorGeometry(tensor: String, reason: String)

    public var description: String {
        switch self {
        case .missingDataPickle: return "torch checkpoint: no <prefix>/data.pkl entry in the zip"
        case .multipleDataPickles(let names): return "torch checkpoint: several data.pkl entries: \(names.joined(separator: ", "))"
        case .unsupportedByteOrder(let order): return "torch checkpoint: byte order '\(order)' is not supported (only little)"
        case .notAStateDict(let why): return "torch checkpoint: the pickled object is not a state dict (\(why))"
        case .duplicateTensorName(let name): return "torch checkpoint: tensor name \(name) appears twice"
        case .missingStorage(let tensor, let key): return "torch checkpoint: tensor \(tensor) needs storage data/\(key), which is missing"
        case .storageSizeMismatch(let tensor, let key, let expected, let actual):
            return "torch checkpoint: storage data/\(key) of tensor \(tensor) should hold \(expected) bytes but holds \(actual)"
        case .storageDTypeConflict(let key): return "torch checkpoint: storage \(key) is used with two different dtypes"
        case .invalidTensorGeometry(let tensor, let reason): return "torch checkpoint: tensor \(tensor): \(reason)"
        }
    }
}

/// A PyTorch zip checkpoint (`pytorch_model.bin`, torchvision `.pth`, `torch.save` output), read through a
/// restricted unpickler.
///
/// Guarantees: opening validates the zip and interprets `data.pkl` without executing anything; a pickle naming any
/// global outside the allow-list (OrderedDict, torch tensor/parameter rebuild functions, torch storage types and dtypes,
/// torch.Size) fails with `PickleError.disallowedGlobal(name)` before any tensor data is touched. Every tensor's
/// storage offset, shape and strides are checked against its storage's size (overflow-safe) at open. The state dict
/// is the top-level dict, or its `state_dict` / `model` entry when the top level holds no tensors; nested dicts are
/// flattened with `.`. Contiguous tensors are views into the mapped file (F32 zero-copy); strided ones are gathered
/// into C order on access.
public struct TorchCheckpoint: CheckpointReader, MappedFile {
    struct Record: Sendable {
        let info: TensorInfo
        let storageKey: String
        let storageElementCount: Int
        let storageOffset: Int
        let stride: [Int]
    }

    public let archive: ZipArchive
    /// The folder all entries live in (e.g. `archive` or the file's stem).
    public let prefix: String
    public let tensorNames: [String]
    private let records: [String: Record]


    public init(buffer: ByteBuffer) throws {
        let archive = try ZipArchive(buffer: buffer)
        self.archive = archive
        let pickles = archive.names.filter { name in
            let parts = name.split(separator: "/", omittingEmptySubsequences: false)
            return parts.count == 2 && parts[1] == "data.pkl"
        }
        guard let pickleName = pickles.first else { throw TorchCheckpointError.missingDataPickle }
        guard pickles.count == 1 else { throw TorchCheckpointError.multipleDataPickles(pickles) }
        let prefix = String(pickleName.dropLast("/data.pkl".count))
        self.prefix = prefix

        // Unpickle first: a disallowed global must be reported before anything else is read.
        let pickle = try archive.contents(of: pickleName)
        let root = try pickle.withUnsafeBytes { try RestrictedUnpickler.load($0) }

        if let order = archive.entry(named: prefix + "/byteorder") {
            let text = String(decoding: try archive.contents(of: order).bytes, as: UTF8.self)
            guard text == "little" else { throw TorchCheckpointError.unsupportedByteOrder(text) }
        }

        var names: [String] = []
        var records: [String: Record] = [:]
        var storageDTypes: [String: TensorDType] = [:]
        for (name, tensor) in try Self.stateDictTensors(root) {
            guard records[name] == nil else { throw TorchCheckpointError.duplicateTensorName(name) }
            let storage = tensor.storage
            if let known = storageDTypes[storage.key], known != storage.dtype {
                throw TorchCheckpointError.storageDTypeConflict(key: storage.key)
            }
            storageDTypes[storage.key] = storage.dtype
            try Self.checkGeometry(name: name, tensor)
            names.append(name)
            records[name] = Record(info: TensorInfo(name: name, dtype: storage.dtype, shape: tensor.shape),
                                   storageKey: storage.key, storageElementCount: storage.elementCount,
                                   storageOffset: tensor.storageOffset, stride: tensor.stride)
        }
        // Storage entries must exist with exactly numel × element size bytes.
        for name in names {
            guard let record = records[name] else { continue }
            let entryName = "\(prefix)/data/\(record.storageKey)"
            guard let entry = archive.entry(named: entryName) else {
                throw TorchCheckpointError.missingStorage(tensor: name, key: record.storageKey)
            }
            let (expected, overflow) = record.storageElementCount.multipliedReportingOverflow(by: record.info.dtype.byteSize)
            guard !overflow, entry.uncompressedSize == expected else {
                throw TorchCheckpointError.storageSizeMismatch(tensor: name, key: record.storageKey,
                                                               expected: overflow ? -1 : expected, actual: entry.uncompressedSize)
            }
        }
        self.tensorNames = names
        self.records = records
    }

    /// Finds the state dict in the unpickled object and lists its tensors in pickle order.
    private static func stateDictTensors(_ root: PickleValue) throws -> [(String, PickledTensor)] {
        guard case .dict(let top) = root else { throw TorchCheckpointError.notAStateDict("top level is not a dict") }
        let hasTopLevelTensors = top.items.contains { if case .tensor = $0.value { return true } else { return false } }
        var chosen = top
        if !hasTopLevelTensors {
            for wanted in ["state_dict", "model"] {
                if let match = top.items.first(where: { if case .string(wanted) = $0.key { return true } else { return false } }),
                   case .dict(let inner) = match.value {
                    chosen = inner
                    break
                }
            }
        }
        var result: [(String, PickledTensor)] = []
        var visiting: Set<ObjectIdentifier> = []
        func flatten(_ dict: PickleDict, prefix: String, depth: Int) throws {
            // A hostile pickle can make a dict contain itself through the memo.
            guard depth < 32, visiting.insert(ObjectIdentifier(dict)).inserted else {
                throw TorchCheckpointError.notAStateDict("dicts nest too deeply or contain themselves")
            }
            defer { visiting.remove(ObjectIdentifier(dict)) }
            for (key, value) in dict.items {
                guard case .string(let name) = key else { continue }
                let fullName = prefix.isEmpty ? name : prefix + "." + name
                switch value {
                case .tensor(let tensor): result.append((fullName, tensor))
                case .dict(let inner): try flatten(inner, prefix: fullName, depth: depth + 1)
                default: continue // bookkeeping values such as epoch numbers carry no weights
                }
            }
        }
        try flatten(chosen, prefix: "", depth: 0)
        return result
    }

    /// Checks that every element the tensor addresses lies inside its storage.
    private static func checkGeometry(name: String, _ tensor: PickledTensor) throws {
        func fail(_ reason: String) -> TorchCheckpointError { .invalidTensorGeometry(tensor: name, reason: reason) }
        guard tensor.shape.count == tensor.stride.count else { throw fail("size and stride have different lengths") }
        guard tensor.storageOffset >= 0 else { throw fail("negative storage offset") }
        guard tensor.stride.allSatisfy({ $0 >= 0 }) else { throw fail("negative stride") }
        if tensor.shape.contains(where: { $0 < 0 }) { throw fail("negative dimension") }
        guard checkedElementCount(tensor.shape) != nil, (try? checkedByteCount(tensor.shape, tensor.storage.dtype)) != nil else {
            throw fail("shape \(tensor.shape) overflows")
        }
        if tensor.shape.contains(0) { return }
        var last = tensor.storageOffset
        for (size, stride) in zip(tensor.shape, tensor.stride) {
            let (span, o1) = (size - 1).multipliedReportingOverflow(by: stride)
            let (sum, o2) = last.addingReportingOverflow(span)
            guard !o1, !o2 else { throw fail("strides overflow") }
            last = sum
        }
        guard last < tensor.storage.elementCount else {
            throw fail("addresses element \(last) of a storage with \(tensor.storage.elementCount) elements")
        }
    }

    // MARK: CheckpointReader

    public func info(_ name: String) -> TensorInfo? { records[name]?.info }

    /// The tensor in C order: a view into the archive when it is contiguous, a gathered copy otherwise.
    public func tensor(_ name: String) throws -> RawTensor {
        guard let record = records[name] else { throw CheckpointError.missingTensor(name) }
        let storage = try archive.contents(of: "\(prefix)/data/\(record.storageKey)")
        let dtype = record.info.dtype
        let shape = record.info.shape
        let elementSize = dtype.byteSize
        let count = checkedElementCount(shape) ?? 0
        if count == 0 { return try RawTensor(dtype: dtype, shape: shape, bytes: ByteView(copying: [])) }

        // Contiguous means C-order strides, ignoring dimensions of size 1 (their stride is irrelevant).
        var expectedStride = 1
        var contiguous = true
        for (size, stride) in zip(shape, record.stride).reversed() {
            if size != 1 && stride != expectedStride { contiguous = false }
            expectedStride *= size
        }
        if contiguous {
            guard let view = storage.slice(record.storageOffset * elementSize, count * elementSize) else {
                throw TorchCheckpointError.invalidTensorGeometry(tensor: name, reason: "data lies outside its storage")
            }
            return try RawTensor(dtype: dtype, shape: shape, bytes: view)
        }
        // Strided (e.g. a transposed weight saved as is): walk the indices in C order and gather elements.
        let gathered = ByteBuffer(owningCount: count * elementSize) { destination in
            storage.withUnsafeBytes { source in
                var index = [Int](repeating: 0, count: shape.count)
                var sourceElement = record.storageOffset
                for element in 0..<count {
                    let from = sourceElement * elementSize
                    for byte in 0..<elementSize { destination[element * elementSize + byte] = source[from + byte] }
                    // Advance the odometer from the last dimension.
                    var dim = shape.count - 1
                    while dim >= 0 {
                        index[dim] += 1
                        sourceElement += record.stride[dim]
                        if index[dim] < shape[dim] { break }
                        sourceElement -= record.stride[dim] * shape[dim]
                        index[dim] = 0
                        dim -= 1
                    }
                }
            }
        }
        return try RawTensor(dtype: dtype, shape: shape, bytes: gathered.view)
    }

    public func floats(_ name: String) throws -> FloatTensor {
        try tensor(name).floatTensor()
    }
}

extension TorchCheckpoint {
    public func dropResidentPages() { archive.buffer.dropResidentPages() }
}

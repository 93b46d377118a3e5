// A restricted pickle reader for PyTorch checkpoints. It interprets the opcodes that `torch.save` emits (pickle
// protocols 2-5, see CPython Lib/pickletools.py for the opcode table) and never imports or calls anything: GLOBAL and
// STACK_GLOBAL are matched against a fixed allow-list of names that map to inert descriptions (a dict constructor, a
// tensor-rebuild record, a storage dtype). Any other name fails immediately with `disallowedGlobal`.

/// Errors from the restricted unpickler.
public enum PickleError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The pickle references a global outside the allow-list; nothing was executed.
    case disallowedGlobal(String)
    case unsupportedOpcode(opcode: UInt8, offset: Int)
    case unsupportedProtocol(Int)
    case truncated(offset: Int)
    case stackUnderflow(offset: Int)
    case missingMark(offset: Int)
    case missingMemo(index: Int, offset: Int)
    case invalidString(offset: Int)
    case integerTooLarge(offset: Int)
    case invalidOperation(String, offset: Int)
    case missingStop

    public var description: String {
        switch self {
        case .disallowedGlobal(let name): return "pickle references disallowed global \(name) (refused, nothing was executed)"
        case .unsupportedOpcode(let opcode, let offset):
            return "pickle opcode 0x\(String(opcode, radix: 16)) at byte \(offset) is not supported by the restricted unpickler"
        case .unsupportedProtocol(let version): return "pickle protocol \(version) is not supported"
        case .truncated(let offset): return "pickle is truncated at byte \(offset)"
        case .stackUnderflow(let offset): return "pickle stack underflow at byte \(offset)"
        case .missingMark(let offset): return "pickle has no MARK for the opcode at byte \(offset)"
        case .missingMemo(let index, let offset): return "pickle memo \(index) read at byte \(offset) was never stored"
        case .invalidString(let offset): return "pickle string at byte \(offset) is not valid UTF-8"
        case .integerTooLarge(let offset): return "pickle integer at byte \(offset) does not fit in 64 bits"
        case .invalidOperation(let what, let offset): return "pickle: \(what) (byte \(offset))"
        case .missingStop: return "pickle ends without STOP"
        }
    }
}

/// The only globals a checkpoint pickle may name, as inert values.
enum PickleGlobal: Equatable {
    case orderedDict
    case rebuildTensor            // torch._utils._rebuild_tensor / _rebuild_tensor_v2
    case rebuildParameter         // torch._utils._rebuild_parameter(_with_state)
    case storageType(TensorDType) // torch.FloatStorage etc.; torch.UntypedStorage is bytes (uint8)
    case dtype(TensorDType)       // torch.float32 etc.
    case torchSize

    static func resolve(module: String, name: String) throws -> PickleGlobal {
        switch (module, name) {
        case ("collections", "OrderedDict"): return .orderedDict
        case ("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_tensor"): return .rebuildTensor
        case ("torch._utils", "_rebuild_parameter"), ("torch._utils", "_rebuild_parameter_with_state"): return .rebuildParameter
        case ("torch", "Size"): return .torchSize
        case ("torch", "UntypedStorage"): return .storageType(.uint8)
        case ("torch", _):
            let storages: [String: TensorDType] = [
                "FloatStorage": .float32, "DoubleStorage": .float64, "HalfStorage": .float16, "BFloat16Storage": .bfloat16,
                "LongStorage": .int64, "IntStorage": .int32, "ShortStorage": .int16, "CharStorage": .int8,
                "ByteStorage": .uint8, "BoolStorage": .bool,
            ]
            let dtypes: [String: TensorDType] = [
                "float32": .float32, "float": .float32, "float64": .float64, "double": .float64, "float16": .float16,
                "half": .float16, "bfloat16": .bfloat16, "int64": .int64, "long": .int64, "int32": .int32, "int": .int32,
                "int16": .int16, "short": .int16, "int8": .int8, "uint8": .uint8, "bool": .bool,
            ]
            if let dtype = storages[name] { return .storageType(dtype) }
            if let dtype = dtypes[name] { return .dtype(dtype) }
        default:
            break
        }
        throw PickleError.disallowedGlobal("\(module).\(name)")
    }
}

/// A storage named by a persistent id: `('storage', storage_type, key, location, numel)`.
struct PickledStorage: Equatable {
    let dtype: TensorDType
    let key: String
    let elementCount: Int
}

/// What `_rebuild_tensor_v2(storage, storage_offset, size, stride, ...)` describes.
struct PickledTensor {
    let storage: PickledStorage
    let storageOffset: Int
    let shape: [Int]
    let stride: [Int]
}

/// Mutable containers are classes because pickle shares them through the memo and mutates them afterwards.
final class PickleList {
    var items: [PickleValue] = []
}

final class PickleDict {
    var items: [(key: PickleValue, value: PickleValue)] = []
}

indirect enum PickleValue {
    case none
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case tuple([PickleValue])
    case list(PickleList)
    case dict(PickleDict)
    case global(PickleGlobal)
    case storage(PickledStorage)
    case tensor(PickledTensor)
    case mark  // only ever on the stack

    var intValue: Int? {
        switch self {
        case .int(let value): return value
        case .bool(let value): return value ? 1 : 0
        default: return nil
        }
    }

    /// Elements of a tuple or list of integers (`torch.Size` reduces to a tuple).
    var intTuple: [Int]? {
        switch self {
        case .tuple(let items): return items.compactMap(\.intValue).count == items.count ? items.compactMap(\.intValue) : nil
        case .list(let list): return list.items.compactMap(\.intValue).count == list.items.count ? list.items.compactMap(\.intValue) : nil
        default: return nil
        }
    }
}

/// Interprets a pickle without executing anything (see the file comment for the allowed globals).
struct RestrictedUnpickler {
    private let bytes: UnsafeRawBufferPointer
    private var position = 0
    private var stack: [PickleValue] = []
    private var memo: [Int: PickleValue] = [:]

    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    static func load(_ bytes: UnsafeRawBufferPointer) throws -> PickleValue {
        var unpickler = RestrictedUnpickler(bytes)
        return try unpickler.run()
    }

    private mutating func take(_ count: Int, at opcodeOffset: Int) throws -> UnsafeRawBufferPointer {
        guard count >= 0, bytes.count - position >= count else { throw PickleError.truncated(offset: opcodeOffset) }
        defer { position += count }
        return UnsafeRawBufferPointer(rebasing: bytes[position..<position + count])
    }

    private mutating func readUInt(_ count: Int, at offset: Int) throws -> UInt64 {
        let field = try take(count, at: offset)
        var value: UInt64 = 0
        for (shift, byte) in field.enumerated() { value |= UInt64(byte) << (8 * UInt64(shift)) }
        return value
    }

    private mutating func readLength(_ count: Int, at offset: Int) throws -> Int {
        let value = try readUInt(count, at: offset)
        guard value <= UInt64(bytes.count) else { throw PickleError.truncated(offset: offset) }
        return Int(value)
    }

    private mutating func readLine(at offset: Int) throws -> String {
        guard let newline = bytes[position...].firstIndex(of: 0x0A) else { throw PickleError.truncated(offset: offset) }
        let line = UnsafeRawBufferPointer(rebasing: bytes[position..<newline])
        position = newline + 1
        guard let text = String(validating: line, as: UTF8.self) else { throw PickleError.invalidString(offset: offset) }
        return text
    }

    private mutating func pop(_ offset: Int) throws -> PickleValue {
        guard let value = stack.popLast(), !isMark(value) else { throw PickleError.stackUnderflow(offset: offset) }
        return value
    }

    private func isMark(_ value: PickleValue) -> Bool {
        if case .mark = value { return true }
        return false
    }

    /// Pops everything above the topmost MARK, and the MARK.
    private mutating func popToMark(_ offset: Int) throws -> [PickleValue] {
        guard let markIndex = stack.lastIndex(where: isMark) else { throw PickleError.missingMark(offset: offset) }
        let items = Array(stack[(markIndex + 1)...])
        stack.removeSubrange(markIndex...)
        return items
    }

    private mutating func run() throws -> PickleValue {
        while position < bytes.count {
            let offset = position
            let opcode = bytes[position]
            position += 1
            switch opcode {
            case 0x80: // PROTO
                let version = Int(try take(1, at: offset)[0])
                guard (2...5).contains(version) else { throw PickleError.unsupportedProtocol(version) }
            case 0x95: // FRAME: only a length hint for buffered readers
                _ = try readUInt(8, at: offset)
            case UInt8(ascii: "."): // STOP
                return try pop(offset)
            case UInt8(ascii: "("): stack.append(.mark)
            case UInt8(ascii: "}"): stack.append(.dict(PickleDict()))
            case UInt8(ascii: "]"): stack.append(.list(PickleList()))
            case UInt8(ascii: ")"): stack.append(.tuple([]))
            case UInt8(ascii: "N"): stack.append(.none)
            case 0x88: stack.append(.bool(true))
            case 0x89: stack.append(.bool(false))
            case UInt8(ascii: "J"): // BININT: signed 32-bit
                stack.append(.int(Int(Int32(bitPattern: UInt32(try readUInt(4, at: offset))))))
            case UInt8(ascii: "K"): stack.append(.int(Int(try readUInt(1, at: offset))))
            case UInt8(ascii: "M"): stack.append(.int(Int(try readUInt(2, at: offset))))
            case 0x8A, 0x8B: // LONG1 / LONG4: little-endian two's complement of n bytes
                let count = try readLength(opcode == 0x8A ? 1 : 4, at: offset)
                let digits = try take(count, at: offset)
                stack.append(.int(try Self.decodeLong(digits, offset: offset)))
            case UInt8(ascii: "G"): // BINFLOAT: big-endian double
                let field = try take(8, at: offset)
                var bits: UInt64 = 0
                for byte in field { bits = bits << 8 | UInt64(byte) }
                stack.append(.float(Double(bitPattern: bits)))
            case UInt8(ascii: "X"), 0x8C, 0x8D: // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8
                let count = try readLength(opcode == 0x8C ? 1 : opcode == 0x8D ? 8 : 4, at: offset)
                let field = try take(count, at: offset)
                guard let text = String(validating: field, as: UTF8.self) else { throw PickleError.invalidString(offset: offset) }
                stack.append(.string(text))
            case UInt8(ascii: "U"), UInt8(ascii: "T"): // SHORT_BINSTRING, BINSTRING: Python 2 str, treated as latin-1
                let count = try readLength(opcode == UInt8(ascii: "U") ? 1 : 4, at: offset)
                let field = try take(count, at: offset)
                stack.append(.string(String(field.map { Character(Unicode.Scalar($0)) })))
            case UInt8(ascii: "C"), UInt8(ascii: "B"), 0x8E: // SHORT_BINBYTES, BINBYTES, BINBYTES8
                let count = try readLength(opcode == UInt8(ascii: "C") ? 1 : opcode == 0x8E ? 8 : 4, at: offset)
                stack.append(.bytes(Array(try take(count, at: offset))))
            case UInt8(ascii: "q"), UInt8(ascii: "r"): // BINPUT, LONG_BINPUT
                let index = Int(try readUInt(opcode == UInt8(ascii: "q") ? 1 : 4, at: offset))
                guard let top = stack.last, !isMark(top) else { throw PickleError.stackUnderflow(offset: offset) }
                memo[index] = top
            case 0x94: // MEMOIZE
                guard let top = stack.last, !isMark(top) else { throw PickleError.stackUnderflow(offset: offset) }
                memo[memo.count] = top
            case UInt8(ascii: "h"), UInt8(ascii: "j"): // BINGET, LONG_BINGET
                let index = Int(try readUInt(opcode == UInt8(ascii: "h") ? 1 : 4, at: offset))
                guard let value = memo[index] else { throw PickleError.missingMemo(index: index, offset: offset) }
                stack.append(value)
            case 0x85: stack.append(.tuple([try pop(offset)]))
            case 0x86:
                let second = try pop(offset), first = try pop(offset)
                stack.append(.tuple([first, second]))
            case 0x87:
                let third = try pop(offset), second = try pop(offset), first = try pop(offset)
                stack.append(.tuple([first, second, third]))
            case UInt8(ascii: "t"): stack.append(.tuple(try popToMark(offset)))
            case UInt8(ascii: "l"): // LIST (from MARK)
                let list = PickleList()
                list.items = try popToMark(offset)
                stack.append(.list(list))
            case UInt8(ascii: "d"): // DICT (from MARK)
                let items = try popToMark(offset)
                let dict = try Self.dictFromPairs(items, offset: offset)
                stack.append(.dict(dict))
            case UInt8(ascii: "a"): // APPEND
                let value = try pop(offset)
                guard case .list(let list) = try pop(offset) else { throw PickleError.invalidOperation("APPEND to a non-list", offset: offset) }
                list.items.append(value)
                stack.append(.list(list))
            case UInt8(ascii: "e"): // APPENDS
                let values = try popToMark(offset)
                guard case .list(let list) = try pop(offset) else { throw PickleError.invalidOperation("APPENDS to a non-list", offset: offset) }
                list.items.append(contentsOf: values)
                stack.append(.list(list))
            case UInt8(ascii: "s"): // SETITEM
                let value = try pop(offset), key = try pop(offset)
                guard case .dict(let dict) = try pop(offset) else { throw PickleError.invalidOperation("SETITEM on a non-dict", offset: offset) }
                dict.items.append((key, value))
                stack.append(.dict(dict))
            case UInt8(ascii: "u"): // SETITEMS
                let items = try popToMark(offset)
                guard case .dict(let dict) = try pop(offset) else { throw PickleError.invalidOperation("SETITEMS on a non-dict", offset: offset) }
                dict.items.append(contentsOf: try Self.dictFromPairs(items, offset: offset).items)
                stack.append(.dict(dict))
            case UInt8(ascii: "0"): _ = try pop(offset) // POP
            case UInt8(ascii: "1"): _ = try popToMark(offset) // POP_MARK
            case UInt8(ascii: "2"): // DUP
                guard let top = stack.last, !isMark(top) else { throw PickleError.stackUnderflow(offset: offset) }
                stack.append(top)
            case UInt8(ascii: "c"): // GLOBAL "module\nname\n": checked against the allow-list before anything else
                let module = try readLine(at: offset)
                let name = try readLine(at: offset)
                stack.append(.global(try PickleGlobal.resolve(module: module, name: name)))
            case 0x93: // STACK_GLOBAL
                let name = try pop(offset), module = try pop(offset)
                guard case .string(let moduleName) = module, case .string(let globalName) = name else {
                    throw PickleError.invalidOperation("STACK_GLOBAL needs two strings", offset: offset)
                }
                stack.append(.global(try PickleGlobal.resolve(module: moduleName, name: globalName)))
            case UInt8(ascii: "Q"): // BINPERSID
                stack.append(.storage(try Self.storage(fromPersistentID: try pop(offset), offset: offset)))
            case UInt8(ascii: "R"): // REDUCE
                let arguments = try pop(offset), callable = try pop(offset)
                guard case .tuple(let args) = arguments else { throw PickleError.invalidOperation("REDUCE arguments are not a tuple", offset: offset) }
                stack.append(try Self.call(callable, args, offset: offset))
            case 0x81: // NEWOBJ: cls.__new__(cls, *args)
                let arguments = try pop(offset), callable = try pop(offset)
                guard case .tuple(let args) = arguments else { throw PickleError.invalidOperation("NEWOBJ arguments are not a tuple", offset: offset) }
                stack.append(try Self.call(callable, args, offset: offset))
            case UInt8(ascii: "b"): // BUILD: sets attributes (e.g. a state dict's `_metadata`), which carry no tensors
                let state = try pop(offset)
                guard let target = stack.last else { throw PickleError.stackUnderflow(offset: offset) }
                switch (target, state) {
                case (.dict, .dict), (.dict, .none), (.dict, .tuple), (.tensor, _): break
                default: throw PickleError.invalidOperation("BUILD on an unexpected object", offset: offset)
                }
            default:
                throw PickleError.unsupportedOpcode(opcode: opcode, offset: offset)
            }
        }
        throw PickleError.missingStop
    }

    private static func decodeLong(_ digits: UnsafeRawBufferPointer, offset: Int) throws -> Int {
        guard !digits.isEmpty else { return 0 }
        let negative = digits[digits.count - 1] & 0x80 != 0
        // Bytes beyond the eighth must be pure sign extension.
        for byte in digits.dropFirst(8) where byte != (negative ? 0xFF : 0x00) {
            throw PickleError.integerTooLarge(offset: offset)
        }
        var value: UInt64 = negative ? UInt64.max : 0
        for (index, byte) in digits.prefix(8).enumerated() {
            value &= ~(UInt64(0xFF) << (8 * UInt64(index)))
            value |= UInt64(byte) << (8 * UInt64(index))
        }
        let signed = Int64(bitPattern: value)
        if digits.count > 8, (signed < 0) != negative { throw PickleError.integerTooLarge(offset: offset) }
        return Int(signed)
    }

    private static func dictFromPairs(_ items: [PickleValue], offset: Int) throws -> PickleDict {
        guard items.count % 2 == 0 else { throw PickleError.invalidOperation("odd number of dict items", offset: offset) }
        let dict = PickleDict()
        for index in stride(from: 0, to: items.count, by: 2) { dict.items.append((items[index], items[index + 1])) }
        return dict
    }

    private static func storage(fromPersistentID pid: PickleValue, offset: Int) throws -> PickledStorage {
        guard case .tuple(let fields) = pid, fields.count == 5, case .string("storage") = fields[0],
              case .global(let type) = fields[1], case .string(let key) = fields[2], let count = fields[4].intValue, count >= 0 else {
            throw PickleError.invalidOperation("persistent id is not ('storage', type, key, location, numel)", offset: offset)
        }
        switch type {
        case .storageType(let dtype), .dtype(let dtype):
            return PickledStorage(dtype: dtype, key: key, elementCount: count)
        default:
            throw PickleError.invalidOperation("persistent id names a non-storage type", offset: offset)
        }
    }

    private static func call(_ callable: PickleValue, _ args: [PickleValue], offset: Int) throws -> PickleValue {
        guard case .global(let global) = callable else {
            throw PickleError.invalidOperation("call of a non-global object", offset: offset)
        }
        switch global {
        case .orderedDict:
            if args.isEmpty { return .dict(PickleDict()) }
            // OrderedDict([(key, value), ...])
            guard args.count == 1 else { break }
            let pairs: [PickleValue]
            switch args[0] {
            case .list(let list): pairs = list.items
            case .tuple(let items): pairs = items
            default: throw PickleError.invalidOperation("OrderedDict argument is not a sequence", offset: offset)
            }
            let dict = PickleDict()
            for pair in pairs {
                guard case .tuple(let kv) = pair, kv.count == 2 else { throw PickleError.invalidOperation("OrderedDict item is not a pair", offset: offset) }
                dict.items.append((kv[0], kv[1]))
            }
            return .dict(dict)
        case .rebuildTensor:
            guard args.count >= 4, case .storage(let storage) = args[0], let storageOffset = args[1].intValue,
                  let shape = args[2].intTuple, let stride = args[3].intTuple else {
                throw PickleError.invalidOperation("_rebuild_tensor arguments are not (storage, offset, size, stride, ...)", offset: offset)
            }
            return .tensor(PickledTensor(storage: storage, storageOffset: storageOffset, shape: shape, stride: stride))
        case .rebuildParameter:
            guard args.count >= 1, case .tensor = args[0] else {
                throw PickleError.invalidOperation("_rebuild_parameter argument is not a tensor", offset: offset)
            }
            return args[0]
        case .torchSize:
            guard args.count == 1, let dims = args[0].intTuple else { break }
            return .tuple(dims.map { .int($0) })
        case .storageType, .dtype:
            break
        }
        throw PickleError.invalidOperation("unsupported call of \(global)", offset: offset)
    }
}

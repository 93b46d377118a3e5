// Options shared by every command that loads a model's files: where to find them.
import ArgumentParser
import Foundation
import ModelHub

struct ModelLocationOptions: ParsableArguments {
    @Option(
        name: .customLong("model-dir"),
        help: ArgumentHelp(
            "Use the model files in a folder instead of the Hugging Face cache, as NAME=PATH (repeatable).",
            valueName: "name=path"))
    var modelDirectories: [String] = []

    @Option(help: "Branch, tag or commit hash to look up in the Hugging Face cache.")
    var revision: String = "main"

    func resolver() throws -> ModelResolver {
        try ModelResolver(settings: HubSettings.fromProcessEnvironment(), modelDirectoryArguments: modelDirectories)
    }

    /// Where `model`'s files are: the --model-dir folder given for it, else the cache snapshot of `revision`.
    func locate(_ model: ModelName) throws -> ModelLocation {
        try resolver().resolve(model, revision: revision)
    }
}

import ArgumentParser

@main
struct PosterSim: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "postersim",
        abstract: "Find movie posters that look alike.",
        subcommands: [PreprocessCommand.self, ModelsCommand.self])
}

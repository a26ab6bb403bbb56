@{
    RootModule           = 'DirSync.psm1'
    ModuleVersion        = '0.1.0'
    GUID                 = '4f7c2a0e-9a51-4c1e-8d0b-6f2d3b1a9c57'
    Author               = 'dirsync contributors'
    CompanyName          = 'dirsync'
    Copyright            = 'Apache-2.0'
    Description          = 'Cmdlets for the dirsync directory synchronization engine (native library over its C ABI).'
    PowerShellVersion    = '5.1'
    CompatiblePSEditions = @('Desktop', 'Core')
    FormatsToProcess     = @('DirSync.Format.ps1xml')
    FunctionsToExport    = @(
        'Connect-DirSync',
        'Disconnect-DirSync',
        'Start-DirSyncCycle',
        'Invoke-DirSyncRunProfile',
        'Get-DirSyncPendingExport',
        'Get-DirSyncRunHistory',
        'Get-DirSyncConnector',
        'Get-DirSyncRule',
        'Get-DirSyncCSObject',
        'Get-DirSyncMVObject',
        'Sync-DirSyncObject',
        'Test-DirSyncFilter',
        'Invoke-DirSyncWriteback',
        'Set-DirSyncPassword',
        'Get-DirSyncScheduler',
        'Set-DirSyncScheduler',
        'Get-DirSyncSchedulerConnectorOverride',
        'Set-DirSyncSchedulerConnectorOverride',
        'Get-DirSyncDeletionThreshold',
        'Set-DirSyncDeletionThreshold',
        'ConvertTo-DirSyncImmutableId',
        'ConvertFrom-DirSyncImmutableId',
        'Test-DirSyncPermission',
        'Import-DirSyncObject',
        'Select-DirSyncObject',
        'Convert-DirSyncObject',
        'Export-DirSyncObject'
    )
    CmdletsToExport      = @()
    VariablesToExport    = @()
    AliasesToExport      = @()
    PrivateData          = @{
        PSData = @{
            Tags       = @('DirSync', 'ActiveDirectory', 'EntraID', 'LDAP', 'Synchronization')
            LicenseUri = 'https://www.apache.org/licenses/LICENSE-2.0'
        }
    }
}
